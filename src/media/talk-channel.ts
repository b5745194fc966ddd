/**
 * A camera's speaker as its talkers see it (two-way audio): one talker at a time, whoever they
 * are: a watch-page viewer (src/webrtc) or a Home app live view (src/homekit). src/talk implements
 * it; it lives here, in the layer all of them import, so neither output names the other.
 */

/** A talker: one viewer or one Home app stream (its id), shown to the others by a name. */
export interface TalkHolder {
  /** One viewer holds the floor, not one person (who may have two tabs open). */
  id: string;
  /** Shown to the others: "alice is talking", "the Home app is talking". */
  name: string;
}

/** A turn at talking: the talker's voice, and letting go. */
export interface TalkTurn {
  /** One Opus payload from the talker, with its RTP timestamp on a 48 kHz clock. */
  voice(payload: Buffer, timestamp: number): void;
  release(): void;
}

export interface TalkChannel {
  /** Who talks now; undefined when nobody does. */
  readonly holder: TalkHolder | undefined;
  /**
   * Takes the floor. `onEnd` is called once, with a plain message, when the turn ends other than
   * by `release()` (the talker went quiet, the camera hung up); `{ busy }` names who talks now.
   */
  take(holder: TalkHolder, onEnd: (message: string) => void): TalkTurn | { busy: string };
  /** Told who talks (undefined: nobody) on every change; returns the unsubscribe. */
  watch(listener: (holder: TalkHolder | undefined) => void): () => void;
}
