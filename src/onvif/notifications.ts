/**
 * ONVIF event notifications read and mapped (pure, so tests feed them answers): the messages of a
 * PullMessages answer, topics normalised across vendors' prefixes, which topics mean motion, a
 * doorbell press, tamper or a line crossing, and the boolean a message carries (whatever the vendor
 * called it).
 */
import { attr, child, childrenNamed, textOf, type XmlElement } from './xml.js';


export type PropertyOperation = 'Initialized' | 'Changed' | 'Deleted';

export interface NotificationMessage {
  /** Topic as sent, trimmed. */
  topic: string;
  /** Prefix-free topic path, e.g. `RuleEngine/CellMotionDetector/Motion`. */
  topicPath: string;
  operation: PropertyOperation | undefined;
  utcTime: string | undefined;
  source: Map<string, string>;
  data: Map<string, string>;
}

export interface MotionEvent {
  topic: string;
  active: boolean;
  operation: PropertyOperation | undefined;
  /** Identifies the motion source (topic and source items) for `MotionState`. */
  key: string;
}

/** Strips prefixes from every topic segment and the ConcreteSet `//.` suffix. */
export function normalizeTopic(raw: string): string {
  return raw
    .trim()
    .replace(/\/\/\.$/, '')
    .split('/')
    .map((segment) => segment.trim().replace(/^[^:]*:/, ''))
    .filter(Boolean)
    .join('/');
}

/**
 * Motion topics: any segment naming motion (`CellMotionDetector/Motion`, `MotionAlarm`,
 * `tnsaxis:MotionDetection`, vendor `.../MotionDetector/Motion`), except configuration topics.
 */
export function isMotionTopic(topicPath: string): boolean {
  const segments = topicPath.split('/');
  if (segments[0]?.toLowerCase() === 'configuration') return false;
  return segments.some((s) => /motion/i.test(s));
}

/**
 * Names of the data item that carries the state, in order of preference: motion (`IsMotion`,
 * `State`, Axis `motion`), the digital input's `LogicalState`, the field detector's `IsInside`, the
 * tamper detector's `IsTamper`.
 */
const VALUE_NAMES = ['ismotion', 'state', 'motion', 'logicalstate', 'isinside', 'istamper', 'active', 'isactive', 'value'];

export function parseBooleanValue(raw: string | undefined): boolean | undefined {
  const value = raw?.trim().toLowerCase();
  if (value === undefined) return undefined;
  if (['true', '1', 'on', 'yes', 'active'].includes(value)) return true;
  if (['false', '0', 'off', 'no', 'inactive'].includes(value)) return false;
  return undefined;
}

function simpleItems(element: XmlElement | undefined): Map<string, string> {
  const items = new Map<string, string>();
  for (const item of childrenNamed(element, 'SimpleItem')) {
    const name = attr(item, 'Name');
    if (name) items.set(name, attr(item, 'Value') ?? '');
  }
  return items;
}

/** Reads every NotificationMessage of a PullMessagesResponse (or any element containing them). */
export function parseNotificationMessages(response: XmlElement): NotificationMessage[] {
  return childrenNamed(response, 'NotificationMessage').map((notification): NotificationMessage => {
    const topic = textOf(child(notification, 'Topic')) ?? '';
    // wsnt:Message wraps tt:Message; some firmwares drop the inner level.
    const outer = child(notification, 'Message');
    const message = child(outer, 'Message') ?? outer;
    const operation = attr(message, 'PropertyOperation');
    return {
      topic,
      topicPath: normalizeTopic(topic),
      operation: operation === 'Initialized' || operation === 'Changed' || operation === 'Deleted' ? operation : undefined,
      utcTime: attr(message, 'UtcTime'),
      source: simpleItems(child(message, 'Source')),
      data: simpleItems(child(message, 'Data')),
    };
  });
}

/** Maps a notification to a motion event, or undefined when it is not about motion. */
export function motionFromNotification(message: NotificationMessage): MotionEvent | undefined {
  const event = eventFromNotification(message);
  if (event?.kind !== 'motion') return undefined;
  return { topic: event.topic, active: event.active, operation: event.operation, key: event.key };
}

// ---------------------------------------------------------------------------------------------------
// Events beyond motion (issue 17): doorbell presses, tamper, line crossing / field detection

/** What a notification means to the plugin. */
export type OnvifEventKind = 'motion' | 'doorbell' | 'tamper' | 'crossing';

export interface OnvifEvent {
  kind: OnvifEventKind;
  topic: string;
  topicPath: string;
  active: boolean;
  operation: PropertyOperation | undefined;
  /** Without a PropertyOperation the message is a pulse: it says something happened, not a state. */
  pulse: boolean;
  /** Topic and source items, so two inputs (or two rules) are tracked apart. */
  key: string;
}

/**
 * Doorbell topics recognised without configuration, prefix-free and compared case-insensitively:
 * - `Device/Trigger/DigitalInput`: the ONVIF Device IO digital input (`LogicalState`); door stations
 *   and cameras wire the bell button to it.
 * - `RuleEngine/MyRuleDetector/Visitor`: Reolink's Video Doorbell (WiFi and PoE) reports its button as
 *   this topic with `State` true/false (seen in users' ONVIF captures: JimStar/reolink_cctv#49,
 *   berfenger/cam2mqtt#15).
 * Hikvision and Dahua door stations announce a call through their own HTTP event APIs (e.g. Dahua's
 * `CallNoAnswered`), not through ONVIF: those use the HTTP trigger, or `doorbell.topic` for a
 * firmware that does send one.
 */
export const DOORBELL_TOPICS: ReadonlyArray<string> = ['Device/Trigger/DigitalInput', 'RuleEngine/MyRuleDetector/Visitor'];

/**
 * Tamper topics: the ONVIF Video Source events for a camera that was turned, covered or blinded
 * (`VideoSource/GlobalSceneChange/...`, `ImageTooBlurry`, `ImageTooDark`, `ImageTooBright`, each
 * under `/ImagingService`, `/AnalyticsService` or `/RecordingService`, data `State`), and the
 * analytics `RuleEngine/TamperDetector/Tamper` (`IsTamper`). Matched by their first two segments.
 */
export const TAMPER_TOPICS: ReadonlyArray<string> = [
  'VideoSource/GlobalSceneChange',
  'VideoSource/ImageTooBlurry',
  'VideoSource/ImageTooDark',
  'VideoSource/ImageTooBright',
  'RuleEngine/TamperDetector',
];

/**
 * Line crossing and field (intrusion) detection, the ONVIF analytics rules: `LineDetector/Crossed`
 * is a pulse (data `ObjectId`), `FieldDetector/ObjectsInside` a property (`IsInside`).
 */
export const CROSSING_TOPICS: ReadonlyArray<string> = ['RuleEngine/LineDetector/Crossed', 'RuleEngine/FieldDetector/ObjectsInside'];

function startsWithTopic(topicPath: string, prefix: string): boolean {
  const path = topicPath.toLowerCase();
  const wanted = prefix.toLowerCase();
  return path === wanted || path.startsWith(`${wanted}/`);
}

/**
 * What a topic means. `doorbellTopics` are the user's own (`doorbell.topic`), written with or
 * without prefixes; they win over everything, then the built-in doorbell, tamper and crossing
 * topics, then motion (a vendor's `FieldDetector/MotionDetector/Motion` is motion, not a field).
 */
export function classifyTopic(topicPath: string, doorbellTopics: ReadonlyArray<string> = []): OnvifEventKind | undefined {
  if (doorbellTopics.some((t) => startsWithTopic(topicPath, normalizeTopic(t)))) return 'doorbell';
  if (DOORBELL_TOPICS.some((t) => startsWithTopic(topicPath, t))) return 'doorbell';
  if (TAMPER_TOPICS.some((t) => startsWithTopic(topicPath, t))) return 'tamper';
  if (CROSSING_TOPICS.some((t) => startsWithTopic(topicPath, t))) return 'crossing';
  return isMotionTopic(topicPath) ? 'motion' : undefined;
}

/** The boolean a message carries, under whichever name the vendor gave it. */
function namedState(data: ReadonlyMap<string, string>): string | undefined {
  for (const wanted of VALUE_NAMES) {
    for (const [name, value] of data) {
      if (name.toLowerCase() === wanted) return value;
    }
  }
  return undefined;
}

/**
 * Maps a notification to the event it means (motion, doorbell, tamper, crossing), or undefined when
 * it is none of those or carries no state. A line crossing is a pulse whatever its data (its only
 * item, `ObjectId`, is a number, not a state: object "0" must not read as "false").
 */
export function eventFromNotification(message: NotificationMessage, doorbellTopics: ReadonlyArray<string> = []): OnvifEvent | undefined {
  const kind = classifyTopic(message.topicPath, doorbellTopics);
  if (!kind) return undefined;
  let raw = namedState(message.data);
  if (raw === undefined && kind !== 'crossing' && message.data.size === 1) raw = [...message.data.values()][0];
  let active = parseBooleanValue(raw);
  let pulse = message.operation === undefined;
  if (active === undefined && kind === 'crossing') {
    // Something crossed the line; some firmwares mark even this with a PropertyOperation.
    active = true;
    pulse = true;
  }
  if (message.operation === 'Deleted') active = false;
  if (active === undefined) return undefined;
  const sourceKey = [...message.source].map(([k, v]) => `${k}=${v}`).sort().join(',');
  return {
    kind,
    topic: message.topic,
    topicPath: message.topicPath,
    active,
    operation: message.operation,
    pulse,
    key: `${message.topicPath}|${sourceKey}`,
  };
}

/**
 * A doorbell event that is a press: the input went true (`Changed`, or a pulse). `Initialized` is
 * the state replayed on every new subscription, so a bell input stuck at true would otherwise ring
 * after each reconnect.
 */
export function isDoorbellPress(event: OnvifEvent): boolean {
  return event.kind === 'doorbell' && event.active && event.operation !== 'Initialized';
}
