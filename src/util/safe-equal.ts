import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets (tokens, digests) in constant time. Hashing both first makes the lengths
 * equal, so neither the content nor the length of the expected value leaks through timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a, 'utf8').digest();
  const y = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(x, y);
}
