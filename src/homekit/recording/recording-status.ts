/**
 * What the Homebridge UI shows of a camera's HomeKit Secure Video (issue 16: "say so in the log and
 * in the UI, by name"): whether the hub has recording on, how much pre-buffer is held, how many
 * recordings the hub pulled, and the newest reason a recording is refused or missing something.
 * Plain data, so the admin route and the page need nothing from HAP.
 */
export type RecordingState =
  /** Recording is configured, but the hub has it off (or no hub has turned it on yet). */
  | 'off'
  /** The hub has recording on: the pre-buffer is held, waiting for motion. */
  | 'buffering'
  /** A hub is pulling a recording now. */
  | 'recording'
  /** Recording is configured but cannot be offered for this camera (`problem` says why). */
  | 'unavailable';

export interface RecordingStatus {
  state: RecordingState;
  /** The `prebufferSeconds` setting after clamping to HomeKit's 4-8 s. */
  prebufferSeconds: number;
  /** Media seconds held now, from the oldest keyframe kept to the newest frame. */
  bufferedSeconds: number;
  bufferedBytes: number;
  /** Recordings the hub has pulled since the plugin started. */
  recordings: number;
  /** When the last one began (ms since the epoch). */
  lastRecordingAt?: number;
  /** The newest reason a recording is refused or missing something, in plain words. */
  problem?: string;
}
