import type { Logger } from '../../src/util/logger.js';

/** A logger that keeps every line, for asserting on messages (and on the absence of secrets). */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const push =
    (level: string) =>
    (message: string, ...parameters: unknown[]): void => {
      lines.push(`${level} ${message}${parameters.length ? ' ' + parameters.map(String).join(' ') : ''}`);
    };
  return { lines, info: push('info'), warn: push('warn'), error: push('error'), debug: push('debug') };
}
