import { redactText } from './redact.js';

/** The small logging seam every module takes; Homebridge's Logging satisfies it. */
export interface Logger {
  info(message: string, ...parameters: unknown[]): void;
  warn(message: string, ...parameters: unknown[]): void;
  error(message: string, ...parameters: unknown[]): void;
  debug(message: string, ...parameters: unknown[]): void;
}

/** A logger that drops everything; for tests and benches. */
export const silentLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
};

/** Prefixes every line, e.g. with the camera name, so a line always says which camera it is about. */
export function prefixedLogger(log: Logger, prefix: string): Logger {
  return {
    info: (m, ...p) => log.info(`[${prefix}] ${m}`, ...p),
    warn: (m, ...p) => log.warn(`[${prefix}] ${m}`, ...p),
    error: (m, ...p) => log.error(`[${prefix}] ${m}`, ...p),
    debug: (m, ...p) => log.debug(`[${prefix}] ${m}`, ...p),
  };
}

/**
 * Wraps a logger so that no line can carry a secret: URLs with credentials are masked and every
 * registered secret (camera and viewer passwords) is replaced, in the message and in string parameters.
 */
export function redactingLogger(log: Logger, secrets: ReadonlySet<string>): Logger {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return redactText(value, [...secrets]);
    if (value instanceof Error) return redactText(value.stack ?? value.message, [...secrets]);
    return value;
  };
  const wrap = (fn: (m: string, ...p: unknown[]) => void) =>
    (m: string, ...p: unknown[]) => fn(clean(m) as string, ...p.map(clean));
  return {
    info: wrap(log.info.bind(log)),
    warn: wrap(log.warn.bind(log)),
    error: wrap(log.error.bind(log)),
    debug: wrap(log.debug.bind(log)),
  };
}
