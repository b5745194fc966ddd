import type { ErrorObject } from 'ajv';
import { redactUrl } from '../util/redact.js';
import type { JsonSchema } from './schema-file.js';

/**
 * Turns ajv's errors into sentences a non-expert can act on: the field, what is wrong, and an
 * example of a good value. Pattern errors need a human hint (a regular expression helps nobody);
 * every `pattern` in config.schema.json has one here, and a test keeps it that way.
 */
export const PATTERN_HINTS: Readonly<Record<string, string>> = {
  'cameras[].name': 'must not be blank — e.g. Front Door',
  'cameras[].id': 'may only use lower-case letters, digits and dashes, starting with a letter or digit — e.g. front-door',
  'cameras[].rtspUrl': 'must start with rtsp:// (or rtsps://) and contain no spaces — e.g. rtsp://192.168.0.20:554/live1.sdp, with the log-in in username and password',
  'cameras[].onvif.host': 'must be the camera\'s IP address or host name only, without http:// and without a port — e.g. 192.168.0.20',
  'cameras[].doorbell.topic': 'must be an ONVIF topic: letters, digits and : / . _ - only, no spaces — e.g. tns1:RuleEngine/MyRuleDetector/Visitor',
  'cameras[].talkUrl': 'must start with http:// or https:// and contain no spaces — e.g. http://192.168.0.20/axis-cgi/audio/transmit.cgi',
  'cameras[].snapshotUrl': 'must start with http:// or https:// and contain no spaces — e.g. http://192.168.0.20/image.jpg',
  'discovery.interfaces[]': 'must be a network interface name or an IP address — e.g. eth0',
  'discovery.probeAddresses[]': 'must be an IP address or host name, optionally with :port — e.g. 10.0.5.20 or 10.0.5.20:3702',
  'web.bind': 'must be an IP address of this computer — e.g. 0.0.0.0 (every device in your home) or 127.0.0.1 (this computer only)',
  'web.publicUrl': 'must start with http:// or https:// — e.g. https://cameras.example.com',
  'web.trustedProxies[]': 'must be an IP address or a CIDR range — e.g. 127.0.0.1 or 10.0.0.0/8',
  'web.allowedOrigins[]': 'must be a web site\'s origin only — http:// or https://, the host and an optional port, without a path — e.g. https://dashboard.example.com',
  'viewers[].username': 'must not contain spaces or colons — e.g. alice',
  'viewers[].cameras[]': 'must be a camera id: lower-case letters, digits and dashes — e.g. front-door',
  'ice.stunServers[]': 'must start with stun: — e.g. stun:stun.l.google.com:19302',
  'ice.turnServers[].urls': 'must start with turn: or turns: — e.g. turn:turn.example.com:3478',
  'ice.announcedAddresses[]': 'must be an IP address or host name — e.g. 203.0.113.7',
  'restream.username': 'must not contain spaces, colons, @ or / — e.g. recorder',
  'scaleOut.janus[].url': 'must start with http:// or https:// and contain no spaces — e.g. http://192.168.0.30:8088/janus',
};

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'text',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a group of settings',
};

const SECRET_FIELD = /pass(word)?|credential|secret|token/i;

/** `["cameras", 1, "onvif", "port"]` -> `cameras[1].onvif.port`. */
export function formatPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${segment}` : segment;
  }
  return out;
}

/** `cameras[1].onvif.port` -> `cameras[].onvif.port`: the key of `PATTERN_HINTS`. */
export function genericPath(segments: ReadonlyArray<string | number>): string {
  return formatPath(segments.map((s) => (typeof s === 'number' ? -1 : s))).replace(/\[-1\]/g, '[]');
}

/** Splits an ajv instancePath ("/onvif/port", "/0") into segments; digits become array indices. */
export function parseInstancePath(instancePath: string): Array<string | number> {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The schema node describing `segments` below `root`, or undefined. */
export function schemaAt(root: JsonSchema, segments: ReadonlyArray<string | number>): JsonSchema | undefined {
  let node: JsonSchema | undefined = root;
  for (const segment of segments) {
    if (!node) return undefined;
    node = typeof segment === 'number' ? node.items : node.properties?.[segment];
  }
  return node;
}

function choicesOf(schema: JsonSchema): string[] | undefined {
  if (schema.enum) return schema.enum.map(String);
  if (schema.oneOf) return schema.oneOf.flatMap((branch) => (branch.enum ?? []).map(String));
  return undefined;
}

/**
 * A raw, user-typed URL made safe to print. `redactUrl` stops at the first '@', so a password that
 * itself contains '@' (typed unencoded) would be half-printed; here the userinfo runs to the last
 * '@' before the path, as URL parsers read it.
 */
export function printableUrl(text: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^\s/]*)@(.*)$/is.exec(text);
  if (!match) return redactUrl(text);
  const [, scheme = '', userinfo = '', rest = ''] = match;
  const colon = userinfo.indexOf(':');
  const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
  return `${scheme}${user}:***@${redactUrl(rest)}`;
}

function describeValue(value: unknown, field: string): string {
  if (SECRET_FIELD.test(field)) return '';
  if (typeof value === 'string') {
    const safe = printableUrl(value);
    const shown = safe.length > 80 ? `${safe.slice(0, 77)}...` : safe;
    return ` (it is "${shown}")`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return ` (it is ${String(value)})`;
  return '';
}

/** One sentence for one field with errors; `data` is the whole object the path starts from. */
function sentence(
  where: ErrorContext,
  segments: ReadonlyArray<string | number>,
  errors: ErrorObject[],
): string {
  const { root, data } = where;
  const all = [...(where.printBase ?? []), ...segments];
  const field = formatPath(all);
  const schema = schemaAt(root, segments) ?? {};
  const example = schema.placeholder ? ` — e.g. ${schema.placeholder}` : '';
  const value = valueAt(data, segments);
  const got = describeValue(value, String(all[all.length - 1] ?? ''));

  const byKeyword = (keyword: string) => errors.find((e) => e.keyword === keyword);
  if (byKeyword('required')) return `${field} is required${example}`;
  if (byKeyword('type')) {
    const expected = typeof schema.type === 'string' ? (TYPE_WORDS[schema.type] ?? schema.type) : 'another kind of value';
    return `${field} must be ${expected}${got}${example}`;
  }
  const choices = choicesOf(schema);
  if (choices && (byKeyword('enum') || byKeyword('oneOf'))) {
    return `${field} must be one of ${choices.join(', ')}${got}`;
  }
  if (byKeyword('pattern')) {
    const hint = PATTERN_HINTS[genericPath([...(where.schemaBase ?? where.printBase ?? []), ...segments])] ?? 'has an invalid format';
    // The value goes between the rule and its example: "must start with rtsp:// (it is "http://...") — e.g. rtsp://...".
    const [rule, hintExample] = hint.split(' — e.g. ');
    return `${field} ${rule}${got}${hintExample ? ` — e.g. ${hintExample}` : example}`;
  }
  if (byKeyword('minimum') || byKeyword('maximum')) {
    const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
    const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
    const range = min !== undefined && max !== undefined ? `between ${min} and ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
    return `${field} must be ${range}${got}${example}`;
  }
  if (byKeyword('minLength')) return `${field} must not be empty${example}`;
  const maxLength = byKeyword('maxLength');
  if (maxLength) return `${field} must be at most ${String(maxLength.params['limit'])} characters long`;
  return `${field} ${errors[0]?.message ?? 'is invalid'}${got}`;
}

function valueAt(data: unknown, segments: ReadonlyArray<string | number>): unknown {
  let node: unknown = data;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}

export interface ErrorContext {
  /** The schema node `data` was validated against. */
  root: JsonSchema;
  data: unknown;
  /** Prefix of the printed field names: `["web"]` makes `port` read `web.port`. */
  printBase?: ReadonlyArray<string | number>;
  /** Where `root` sits in the whole schema, when unlike `printBase`: `["cameras", 0]` for a camera. */
  schemaBase?: ReadonlyArray<string | number>;
}

/** One sentence per faulty field, in the order ajv found them. */
export function describeErrors(errors: ReadonlyArray<ErrorObject>, where: ErrorContext): string[] {
  const groups = new Map<string, { segments: Array<string | number>; errors: ErrorObject[] }>();
  for (const error of errors) {
    const segments = parseInstancePath(error.instancePath);
    if (error.keyword === 'required') segments.push(String(error.params['missingProperty']));
    const key = JSON.stringify(segments);
    const group = groups.get(key) ?? { segments, errors: [] };
    group.errors.push(error);
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => sentence(where, g.segments, g.errors));
}
