/**
 * A client of Janus's HTTP API (https://janus.conf.meetecho.com/docs/rest.html): one Janus
 * session, plugin handles on it, and the long poll that brings the session's events.
 *
 * Janus is a server the user configured, but what it answers is still checked before it is used:
 * every reply and event is read through small guards, and anything else is an error with a clear
 * message, never a throw out of the poll loop. The API secret or token rides in each request's body
 * (and the long poll's query) and never in a message: `JanusError` texts carry Janus's own code and
 * reason, and addresses are printed without their query.
 */
import { EventEmitter } from 'node:events';

export interface JanusEndpoint {
  /** The HTTP API, e.g. http://192.168.0.30:8088/janus. */
  url: string;
  /** Janus's `api_secret`, when it has one. */
  apiSecret?: string;
  /** A stored token (Janus's `token_auth`), when it uses them. */
  token?: string;
}

export interface JanusSessionOptions {
  /** How long a request may take (default 10 s). */
  requestTimeoutMs?: number;
  /** Keepalive period (default 25 s; Janus drops a session after 60 s of silence by default). */
  keepaliveMs?: number;
  /** fetch, for tests. */
  fetch?: typeof fetch;
}

/** An error Janus answered, or a failure to reach it. `code` is Janus's (458: no such session). */
export class JanusError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'JanusError';
  }
}

/** Janus's code for "this session does not exist" (it restarted, or the session timed out). */
export const JANUS_NO_SUCH_SESSION = 458;

export interface Jsep {
  type: 'offer' | 'answer';
  sdp: string;
}

export interface JanusIceCandidate {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}

/** What a plugin said in an event or a synchronous reply (`plugindata.data`). */
export type PluginData = Record<string, unknown>;

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The address without its query, for messages. */
export function printableJanusUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return 'an invalid address';
  }
}

function readJsep(value: unknown): Jsep | undefined {
  if (!isObject(value)) return undefined;
  const { type, sdp } = value;
  if ((type === 'offer' || type === 'answer') && typeof sdp === 'string') return { type, sdp };
  return undefined;
}

/** The error a plugin reply carries (`error_code` + `error`), if any. */
function pluginError(data: PluginData): JanusError | undefined {
  if (typeof data['error_code'] !== 'number' && typeof data['error'] !== 'string') return undefined;
  const code = typeof data['error_code'] === 'number' ? data['error_code'] : undefined;
  return new JanusError(`Janus: ${typeof data['error'] === 'string' ? data['error'] : 'plugin error'}${code !== undefined ? ` (${code})` : ''}`, code);
}

let transactions = 0;
const transactionId = (): string => `hwc-${process.pid}-${++transactions}`;

export interface JanusHandleEvents {
  /** An asynchronous plugin event that no request waits for (e.g. the streaming plugin's status). */
  event: [data: PluginData, jsep: Jsep | undefined];
  /** The handle's PeerConnection is up (DTLS done). */
  webrtcup: [];
  /** Its PeerConnection went down; the handle may be reused or detached. */
  hangup: [reason: string];
  /** The handle is gone (detached, or its session ended). */
  detached: [];
}

/** One plugin handle: requests to the plugin and its events. */
export class JanusHandle extends EventEmitter<JanusHandleEvents> {
  private readonly waiting = new Map<string, { resolve: (value: { data: PluginData; jsep?: Jsep }) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private gone = false;

  constructor(
    private readonly session: JanusSession,
    readonly id: number,
  ) {
    super();
  }

  get detached(): boolean {
    return this.gone;
  }

  /** A synchronous plugin request (create, destroy, info...): the plugin's reply, or its error thrown. */
  async request(body: JsonObject): Promise<PluginData> {
    const reply = await this.session.post(`/${this.session.id}/${this.id}`, { janus: 'message', body });
    if (reply['janus'] !== 'success' || !isObject(reply['plugindata']) || !isObject(reply['plugindata']['data'])) {
      throw new JanusError(`Janus: unexpected reply to ${String(body['request'])} (${String(reply['janus'])})`);
    }
    const data = reply['plugindata']['data'];
    const error = pluginError(data);
    if (error) throw error;
    return data;
  }

  /** An asynchronous plugin request (watch, start...): resolves with the event that answers it. */
  async message(body: JsonObject, jsep?: Jsep, timeoutMs = 15_000): Promise<{ data: PluginData; jsep?: Jsep }> {
    const transaction = transactionId();
    const answered = new Promise<{ data: PluginData; jsep?: Jsep }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(transaction);
        reject(new JanusError(`Janus: no answer to ${String(body['request'])} in ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.waiting.set(transaction, { resolve, reject, timer });
    });
    try {
      const reply = await this.session.post(`/${this.session.id}/${this.id}`, { janus: 'message', body, ...(jsep ? { jsep } : {}) }, transaction);
      if (reply['janus'] !== 'ack' && reply['janus'] !== 'success') throw new JanusError(`Janus: unexpected reply to ${String(body['request'])} (${String(reply['janus'])})`);
    } catch (error) {
      this.settle(transaction, undefined, error instanceof Error ? error : new JanusError(String(error)));
    }
    const result = await answered;
    const error = pluginError(result.data);
    if (error) throw error;
    return result;
  }

  async trickle(candidate: JanusIceCandidate | null): Promise<void> {
    await this.session.post(`/${this.session.id}/${this.id}`, { janus: 'trickle', candidate: candidate ?? { completed: true } });
  }

  /** Detaches (never throws: a gateway that is gone has detached it already). */
  async detach(): Promise<void> {
    if (this.gone) return;
    try {
      await this.session.post(`/${this.session.id}/${this.id}`, { janus: 'detach' });
    } catch {
      // Gone with its gateway or session.
    }
    this.end();
  }

  /** Called by the session with each event for this handle. */
  dispatch(event: JsonObject): void {
    const kind = event['janus'];
    if (kind === 'event') {
      const data = isObject(event['plugindata']) && isObject(event['plugindata']['data']) ? event['plugindata']['data'] : {};
      const jsep = readJsep(event['jsep']);
      const transaction = typeof event['transaction'] === 'string' ? event['transaction'] : undefined;
      if (transaction && this.waiting.has(transaction)) {
        this.settle(transaction, { data, ...(jsep ? { jsep } : {}) });
        return;
      }
      this.emit('event', data, jsep);
    } else if (kind === 'webrtcup') {
      this.emit('webrtcup');
    } else if (kind === 'hangup') {
      this.emit('hangup', typeof event['reason'] === 'string' ? event['reason'] : 'hangup');
    } else if (kind === 'detached') {
      this.end();
    }
  }

  /** The session ended: every waiting request fails, and the handle is gone. */
  end(error: Error = new JanusError('Janus: the handle is gone')): void {
    if (this.gone) return;
    this.gone = true;
    for (const transaction of [...this.waiting.keys()]) this.settle(transaction, undefined, error);
    this.session.forget(this.id);
    this.emit('detached');
  }

  private settle(transaction: string, value?: { data: PluginData; jsep?: Jsep }, error?: Error): void {
    const waiter = this.waiting.get(transaction);
    if (!waiter) return;
    this.waiting.delete(transaction);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else if (value) waiter.resolve(value);
  }
}

export interface JanusSessionEvents {
  /** The session is gone (Janus restarted or is unreachable); every handle is detached. */
  lost: [error: JanusError];
}

/**
 * One Janus session with its long poll. `lost` is emitted once, when Janus says the session does
 * not exist or cannot be reached twice in a row; the owner then makes a new session.
 */
export class JanusSession extends EventEmitter<JanusSessionEvents> {
  private readonly handles = new Map<number, JanusHandle>();
  private readonly fetcher: typeof fetch;
  private readonly requestTimeoutMs: number;
  private keepalive: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private ended = false;

  private constructor(
    readonly endpoint: JanusEndpoint,
    readonly id: number,
    options: JanusSessionOptions,
  ) {
    super();
    this.fetcher = options.fetch ?? fetch;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.keepalive = setInterval(() => {
      this.post(`/${this.id}`, { janus: 'keepalive' }).catch(() => undefined);
    }, options.keepaliveMs ?? 25_000);
    this.keepalive.unref();
  }

  /** Creates a session and starts its long poll. Rejects with a JanusError (never with the secret). */
  static async create(endpoint: JanusEndpoint, options: JanusSessionOptions = {}): Promise<JanusSession> {
    const reply = await postJson(options.fetch ?? fetch, endpoint, '', { janus: 'create' }, transactionId(), options.requestTimeoutMs ?? 10_000);
    const data = reply['data'];
    if (reply['janus'] !== 'success' || !isObject(data) || typeof data['id'] !== 'number') throw new JanusError(`Janus: unexpected reply to create (${String(reply['janus'])})`);
    const session = new JanusSession(endpoint, data['id'], options);
    void session.poll();
    return session;
  }

  get closed(): boolean {
    return this.ended;
  }

  async attach(plugin: string): Promise<JanusHandle> {
    const reply = await this.post(`/${this.id}`, { janus: 'attach', plugin });
    const data = reply['data'];
    if (reply['janus'] !== 'success' || !isObject(data) || typeof data['id'] !== 'number') throw new JanusError(`Janus: could not attach to ${plugin}`);
    const handle = new JanusHandle(this, data['id']);
    this.handles.set(handle.id, handle);
    return handle;
  }

  /** POSTs a Janus API message with a transaction and the credentials; rejects on a Janus error. */
  async post(path: string, message: JsonObject, transaction = transactionId()): Promise<JsonObject> {
    if (this.ended) throw new JanusError('Janus: the session has ended', JANUS_NO_SUCH_SESSION);
    const reply = await postJson(this.fetcher, this.endpoint, path, message, transaction, this.requestTimeoutMs);
    return reply;
  }

  forget(handleId: number): void {
    this.handles.delete(handleId);
  }

  /** Ends the session at Janus (best effort) and locally. */
  async destroy(): Promise<void> {
    if (this.ended) return;
    await this.post(`/${this.id}`, { janus: 'destroy' }).catch(() => undefined);
    this.end();
  }

  private end(error?: JanusError): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.keepalive);
    this.abort.abort();
    for (const handle of [...this.handles.values()]) handle.end(error);
    if (error) this.emit('lost', error);
  }

  private async poll(): Promise<void> {
    let failures = 0;
    while (!this.ended) {
      try {
        const query = new URLSearchParams({ maxev: '10', rid: String(Date.now()) });
        if (this.endpoint.apiSecret) query.set('apisecret', this.endpoint.apiSecret);
        if (this.endpoint.token) query.set('token', this.endpoint.token);
        const response = await this.fetcher(`${this.endpoint.url}/${this.id}?${query.toString()}`, {
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(45_000)]),
        });
        const body: unknown = await response.json();
        const events = Array.isArray(body) ? body : [body];
        failures = 0;
        for (const event of events) {
          if (!isObject(event)) continue;
          if (event['janus'] === 'error') {
            const error = isObject(event['error']) ? event['error'] : {};
            const code = typeof error['code'] === 'number' ? error['code'] : undefined;
            if (code === JANUS_NO_SUCH_SESSION) {
              this.end(new JanusError('Janus: the session is gone (the gateway restarted or timed it out)', code));
              return;
            }
            continue;
          }
          const sender = typeof event['sender'] === 'number' ? event['sender'] : undefined;
          if (sender !== undefined) this.handles.get(sender)?.dispatch(event);
        }
      } catch (error) {
        if (this.ended) return;
        // One failed poll may be a blip; two in a row mean the gateway is gone.
        if (++failures >= 2) {
          this.end(new JanusError(`Janus at ${printableJanusUrl(this.endpoint.url)} is unreachable: ${error instanceof Error ? error.message : String(error)}`));
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
}

async function postJson(fetcher: typeof fetch, endpoint: JanusEndpoint, path: string, message: JsonObject, transaction: string, timeoutMs: number): Promise<JsonObject> {
  const body: JsonObject = { ...message, transaction };
  if (endpoint.apiSecret) body['apisecret'] = endpoint.apiSecret;
  if (endpoint.token) body['token'] = endpoint.token;
  let reply: unknown;
  try {
    const response = await fetcher(`${endpoint.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    reply = await response.json();
  } catch (error) {
    throw new JanusError(`Janus at ${printableJanusUrl(endpoint.url)} did not answer: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isObject(reply)) throw new JanusError('Janus: the reply is not a JSON object');
  if (reply['janus'] === 'error') {
    const error = isObject(reply['error']) ? reply['error'] : {};
    const code = typeof error['code'] === 'number' ? error['code'] : undefined;
    throw new JanusError(`Janus: ${typeof error['reason'] === 'string' ? error['reason'] : 'error'}${code !== undefined ? ` (${code})` : ''}`, code);
  }
  return reply;
}
