/**
 * Shared machinery for H.264 and H.265 depacketisation: collects NAL units (whole or fragmented)
 * into access units by RTP timestamp and marker bit.
 *
 * Bytes are copied out of the packet as they arrive, because upstreams may reuse their receive
 * buffers once `onRtp` returns, and frames live on in the GOP cache. They go into one growing
 * scratch buffer; a finished access unit is copied once into an exactly-sized buffer whose
 * subarrays are the NAL units, so a frame costs one allocation however many NALs it has.
 */
import type { DepacketizerCounters, RtpPacketView } from './types.js';

export type { DepacketizerCounters } from './types.js';

export interface AccessUnit {
  /** The camera's RTP timestamp (input timeline). */
  timestamp: number;
  /** NAL units without start codes, views into one buffer owned by this access unit. */
  units: Buffer[];
  byteLength: number;
  /** A packet inside (or just before) this access unit was lost; some NAL may be missing. */
  damaged: boolean;
}

export function newDepacketizerCounters(): DepacketizerCounters {
  return {
    packets: 0,
    accessUnits: 0,
    accessUnitsWithoutMarker: 0,
    fragmentsWithoutStart: 0,
    fragmentedNalsLost: 0,
    malformed: 0,
    unsupported: 0,
    oversized: 0,
  };
}

/** A hostile or broken stream that never sets the marker or changes timestamp must not eat memory. */
export const MAX_ACCESS_UNIT_BYTES = 16 * 1024 * 1024;

export abstract class NalAssembler {
  readonly counters: DepacketizerCounters = newDepacketizerCounters();

  private scratch = Buffer.allocUnsafe(256 * 1024);
  private length = 0;
  private readonly nalStarts: number[] = [];
  private readonly nalEnds: number[] = [];
  /** Start offset of the NAL currently being reassembled from fragments, or -1. */
  private fragmentStart = -1;
  private auOpen = false;
  private auTimestamp = 0;
  private auDamaged = false;
  private auOversized = false;

  constructor(private readonly onAccessUnit: (au: AccessUnit) => void) {}

  /**
   * Feeds one packet of this track. `lossBefore` says packets are missing between the previous
   * packet and this one (the caller tracks sequence numbers, per SSRC).
   */
  push(packet: RtpPacketView, lossBefore: boolean): void {
    this.counters.packets++;
    if (lossBefore) {
      if (this.fragmentStart >= 0) this.abortFragment(true);
      if (this.auOpen) this.auDamaged = true;
    }
    if (this.auOpen && packet.timestamp !== this.auTimestamp) {
      // The marker packet of the previous access unit is missing: a new timestamp ends it.
      this.counters.accessUnitsWithoutMarker++;
      this.finish();
    }
    if (!this.auOpen) {
      this.auOpen = true;
      this.auTimestamp = packet.timestamp;
      // We cannot tell which access unit the lost packets belonged to, so both are suspect.
      this.auDamaged = lossBefore;
    }
    this.depacketize(packet.payload);
    if (packet.marker) this.finish();
  }

  /** Ends the current access unit (e.g. the session ended); emits it if it has content. */
  flush(): void {
    if (this.auOpen) this.finish();
  }

  /** Forgets any partial access unit (new SSRC or session). */
  reset(): void {
    this.length = 0;
    this.nalStarts.length = 0;
    this.nalEnds.length = 0;
    this.fragmentStart = -1;
    this.auOpen = false;
    this.auDamaged = false;
    this.auOversized = false;
  }

  /** Parses one RTP payload, calling the NAL/fragment methods below. */
  protected abstract depacketize(payload: Buffer): void;

  protected get inFragment(): boolean {
    return this.fragmentStart >= 0;
  }

  protected addNal(source: Buffer, start: number, end: number): void {
    if (end <= start) return;
    if (!this.reserve(end - start)) return;
    this.nalStarts.push(this.length);
    this.length += source.copy(this.scratch, this.length, start, end);
    this.nalEnds.push(this.length);
  }

  /** Starts a fragmented NAL with its reconstructed header (1 byte for H.264, 2 for H.265). */
  protected beginFragment(header0: number, header1: number | undefined, source: Buffer, start: number): void {
    if (this.fragmentStart >= 0) this.abortFragment(true);
    if (!this.reserve(2 + source.length - start)) return;
    this.fragmentStart = this.length;
    this.scratch[this.length++] = header0;
    if (header1 !== undefined) this.scratch[this.length++] = header1;
    this.length += source.copy(this.scratch, this.length, start);
  }

  protected appendFragment(source: Buffer, start: number): void {
    if (this.fragmentStart < 0) return;
    if (!this.reserve(source.length - start)) return;
    this.length += source.copy(this.scratch, this.length, start);
  }

  /**
   * A middle or end fragment (FU-A / FU without the start bit), the same for both codecs: one that
   * arrives with no fragment under way lost its start and is counted and dropped.
   */
  protected continueFragment(source: Buffer, start: number, end: boolean): void {
    if (!this.inFragment) {
      this.counters.fragmentsWithoutStart++;
      return;
    }
    this.appendFragment(source, start);
    if (end) this.endFragment();
  }

  protected endFragment(): void {
    if (this.fragmentStart < 0) return;
    this.nalStarts.push(this.fragmentStart);
    this.nalEnds.push(this.length);
    this.fragmentStart = -1;
  }

  /** Drops a partly assembled NAL; `lost` counts it as a loss (vs. an interruption already counted). */
  protected abortFragment(lost: boolean): void {
    if (this.fragmentStart < 0) return;
    this.length = this.fragmentStart;
    this.fragmentStart = -1;
    if (lost) this.counters.fragmentedNalsLost++;
    this.auDamaged = true;
  }

  private reserve(bytes: number): boolean {
    if (this.auOversized) return false;
    const needed = this.length + bytes;
    if (needed > MAX_ACCESS_UNIT_BYTES) {
      this.auOversized = true;
      return false;
    }
    if (needed > this.scratch.length) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_ACCESS_UNIT_BYTES, Math.max(needed, this.scratch.length * 2)));
      this.scratch.copy(grown, 0, 0, this.length);
      this.scratch = grown;
    }
    return true;
  }

  private finish(): void {
    if (this.fragmentStart >= 0) this.abortFragment(true);
    const count = this.nalStarts.length;
    const timestamp = this.auTimestamp;
    const damaged = this.auDamaged;
    const oversized = this.auOversized;
    if (oversized) this.counters.oversized++;
    if (count > 0 && !oversized) {
      const out = Buffer.allocUnsafe(this.length);
      this.scratch.copy(out, 0, 0, this.length);
      const units = new Array<Buffer>(count);
      for (let i = 0; i < count; i++) units[i] = out.subarray(this.nalStarts[i]!, this.nalEnds[i]!);
      this.reset();
      this.counters.accessUnits++;
      this.onAccessUnit({ timestamp, units, byteLength: out.length, damaged });
      return;
    }
    this.reset();
  }
}
