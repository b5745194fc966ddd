/**
 * The default viewer caps, in a leaf module of their own: the config loader fills them in when the
 * settings are empty (defaults.ts), and access control's peer guard (src/web/auth) and the viewer
 * limiter (src/webrtc) fall back to them when built without a config (tests, benchmarks), and nothing
 * below src/runtime may import the loader itself. One number each, so they cannot disagree.
 */

/**
 * web.maxViewsPerUser and web.maxViewsPerAddress when not set. Applied by the loader, not as a
 * schema "default", because the settings form saves every schema default it shows into the config.
 */
export const WEB_DEFAULT_VIEWS_LIMIT = 32;

/**
 * web.maxConnectingViews when not set: views one account or share link, and one address, may have
 * still connecting at once. A page opens one view at a time per camera tile and a family shares an
 * address; 4 leaves room for a few tabs connecting together while an offer that never connects
 * (free to send) holds at most 4 of a 10-viewer camera's places.
 */
export const WEB_DEFAULT_CONNECTING_LIMIT = 4;

/**
 * The most views one account or address may have connecting at once, whatever is configured: the
 * schema's maximum for web.maxConnectingViews, and the limiter's own clamp. Each one is a peer
 * connection doing its ICE checks and DTLS handshake (key exchange and signature, certificate, UDP
 * sockets, buffers) before it sends a single frame; 100 is twice the 50-viewer connect storm of
 * issue 14, and past it one address could keep a Raspberry Pi busy with handshakes alone.
 */
export const CONNECTING_LIMIT_CEILING = 100;
