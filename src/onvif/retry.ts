/**
 * Keeps trying an ONVIF operation for one camera until it works or is cancelled, logging one clear
 * error per kind of failure (not one per attempt), so a broken camera neither floods the log nor
 * stops the others. Errors a retry cannot fix by itself (wrong password) are retried slowly, since
 * the user may fix the camera rather than the configuration.
 */
import type { Logger } from '../util/logger.js';
import { OnvifError, toOnvifError } from './errors.js';

export interface OnvifRetryOptions {
  log: Logger;
  /** Camera name, for messages about errors that are not already `OnvifError`s. */
  camera: string;
  signal?: AbortSignal;
  /** First delay; doubles per attempt with jitter. Default 2000 ms. */
  initialDelayMs?: number;
  /** Longest delay, also used for non-retryable errors. Default 300 000 ms. */
  maxDelayMs?: number;
  /** Called for every failure (after logging), e.g. to mark the accessory as not responding. */
  onError?: (error: OnvifError, attempt: number) => void;
}

export async function retryOnvif<T>(operation: (attempt: number) => Promise<T>, options: OnvifRetryOptions): Promise<T> {
  const initial = options.initialDelayMs ?? 2000;
  const max = options.maxDelayMs ?? 300_000;
  let lastCode: string | undefined;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw new OnvifError({ code: 'ABORTED', camera: options.camera, action: 'connect' });
    try {
      const result = await operation(attempt);
      if (lastCode) options.log.info(`[${options.camera}] ONVIF camera reachable again`);
      return result;
    } catch (caught) {
      const error = toOnvifError(caught, options.camera, 'connect');
      if (error.code === 'ABORTED' && options.signal?.aborted) throw error;
      const delay = error.retryable ? Math.min(max, initial * 2 ** Math.min(attempt - 1, 20)) * (0.8 + Math.random() * 0.4) : max;
      const message = `${error.message}; retrying in ${Math.round(delay / 1000)} s`;
      if (error.code !== lastCode) options.log.error(message);
      else options.log.debug(message);
      lastCode = error.code;
      options.onError?.(error, attempt);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delay);
        function done(): void {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        }
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}
