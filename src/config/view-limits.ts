/**
 * The default viewer caps, in a leaf module of their own: the config loader fills them in when the
 * settings are empty (defaults.ts), and access control's peer guard (src/web/auth) falls back to them
 * when it is built without a config (tests, benchmarks), and nothing below src/runtime may import the
 * loader itself. One number, so the guard and the loader cannot disagree.
 */

/**
 * web.maxViewsPerUser and web.maxViewsPerAddress when not set. Applied by the loader, not as a
 * schema "default", because the settings form saves every schema default it shows into the config.
 */
export const WEB_DEFAULT_VIEWS_LIMIT = 32;
