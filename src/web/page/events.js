// The page's one connection to GET /api/events (server-sent events, src/web/event-stream.ts), shared
// by the doorbell alerts (app.js) and the PTZ controls (ptz.js): opened when the first listener
// subscribes, closed when the last one leaves. One per page rather than one per feature: the server
// lets an account or share link hold only a few streams (4), so a second stream per tab would halve
// the tabs that hear a doorbell. EventSource reconnects by itself after a drop; what was missed
// meanwhile, the camera list's next refresh brings back.

/** @type {EventSource | null} */
let source = null;
let listeners = 0;

/**
 * Calls `listener` with the data of every `type` event (a JSON object; anything else is dropped)
 * until the returned function is called.
 * @param {string} type
 * @param {(data: Record<string, unknown>) => void} listener
 * @returns {() => void} unsubscribes (a second call does nothing)
 */
export function subscribe(type, listener) {
  /** @param {MessageEvent} event */
  const handler = (event) => {
    /** @type {unknown} */
    let data;
    try {
      data = JSON.parse(String(event.data));
    } catch {
      return;
    }
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) listener(/** @type {Record<string, unknown>} */ (data));
  };
  const stream = (source ??= new EventSource('/api/events'));
  stream.addEventListener(type, handler);
  listeners++;
  let subscribed = true;
  return () => {
    if (!subscribed) return;
    subscribed = false;
    stream.removeEventListener(type, handler);
    listeners--;
    if (listeners === 0 && source === stream) {
      stream.close();
      source = null;
    }
  };
}
