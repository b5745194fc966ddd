/**
 * The share-link expiry choices, in a leaf module of their own: the config loader validates them and
 * access control (src/web/auth) issues links with them, and nothing below src/runtime may import the
 * loader itself.
 */
import type { ShareLinkExpiry } from './types.js';

/** How long a share link made with each expiry choice lasts (the form, the config and the API share it). */
export const EXPIRY_MS: Readonly<Record<ShareLinkExpiry, number>> = {
  '1h': 3_600_000,
  '1d': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};
