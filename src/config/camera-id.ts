/** Camera ids appear in URLs (/cameras/<id>, rtsp://127.0.0.1:<port>/<id>) and in the accessory UUID. */
export const CAMERA_ID_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
export const CAMERA_ID_MAX_LENGTH = 40;

/**
 * Derives an id from a camera name: "Front Door" -> "front-door", "Küche 2" -> "kuche-2".
 * Returns `fallback` when nothing usable is left (a name of only symbols or non-Latin letters).
 */
export function cameraIdFromName(name: string, fallback: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // drop the accents NFKD split off
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, CAMERA_ID_MAX_LENGTH)
    .replace(/-+$/, '');
  return slug || fallback;
}
