/**
 * ONVIF event notifications read and mapped to motion (pure, so tests feed them answers): the
 * messages of a PullMessages answer, topics normalised across vendors' prefixes, which topics mean
 * motion, and the boolean a message carries (whatever the vendor called it).
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

const VALUE_NAMES = ['ismotion', 'state', 'motion', 'active', 'isactive', 'value'];

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
  if (!isMotionTopic(message.topicPath)) return undefined;
  let raw: string | undefined;
  for (const wanted of VALUE_NAMES) {
    for (const [name, value] of message.data) {
      if (name.toLowerCase() === wanted) {
        raw = value;
        break;
      }
    }
    if (raw !== undefined) break;
  }
  if (raw === undefined && message.data.size === 1) raw = [...message.data.values()][0];
  let active = parseBooleanValue(raw);
  if (message.operation === 'Deleted') active = false;
  if (active === undefined) return undefined;
  const sourceKey = [...message.source].map(([k, v]) => `${k}=${v}`).sort().join(',');
  return { topic: message.topic, active, operation: message.operation, key: `${message.topicPath}|${sourceKey}` };
}
