/**
 * A reader of the watch page's server-sent events (`GET /api/events`, src/web/event-stream.ts) for
 * tests: it keeps the stream open, collects what arrives, and lets a test wait for an event by type,
 * parsed, instead of sleeping. Registered with processes.ts, so a failing test leaves no socket open.
 */
import { request, type ClientRequest } from 'node:http';
import { registerCleanup } from './processes.js';

export interface StreamedEvent {
  type: string;
  data: unknown;
}

export interface EventStreamReader {
  /** The HTTP status, once the headers came. */
  readonly status: Promise<number>;
  /** Everything received so far, as sent (comments and retry lines included). */
  readonly text: string;
  /** The events received so far, in order. */
  events(type?: string): StreamedEvent[];
  /** Resolves with the `count`-th event of `type` (1 = the first), failing after `timeoutMs`. */
  waitFor(type: string, count?: number, timeoutMs?: number): Promise<StreamedEvent>;
  close(): void;
}

export function readEventStream(url: string, headers: Record<string, string> = {}): EventStreamReader {
  let text = '';
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  let resolveStatus: (status: number) => void = () => undefined;
  const status = new Promise<number>((resolve) => (resolveStatus = resolve));
  const req: ClientRequest = request(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      text += chunk;
      wake();
    });
    res.on('error', () => undefined);
  });
  req.on('error', (error) => {
    failure = error;
    resolveStatus(0);
    wake();
  });
  req.end();
  const unregister = registerCleanup(() => req.destroy());

  const events = (type?: string): StreamedEvent[] => text
    .split('\n\n')
    .slice(0, -1) // the last piece is an event still arriving (or empty)
    .flatMap((block) => {
      const name = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      return name !== undefined && data !== undefined && (type === undefined || name === type) ? [{ type: name, data: JSON.parse(data) as unknown }] : [];
    });

  return {
    status,
    get text() {
      return text;
    },
    events,
    waitFor(type, count = 1, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = events(type)[count - 1];
          if (!found && !failure) return;
          waiters.delete(check);
          clearTimeout(timer);
          if (found) resolve(found);
          else reject(failure ?? new Error('unreachable'));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${type} event #${count}; received: ${JSON.stringify(text)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      req.destroy();
      unregister();
    },
  };
}
