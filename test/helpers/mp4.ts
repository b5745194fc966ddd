// Reading back what the fMP4 muxer wrote, independently of it: the top-level box sequence, and
// MediaFrames made from real encoded access units for the muxer and the recording tests.
import type { MediaFrame } from '../../src/media/types.js';

export interface TopLevelBox {
  type: string;
  offset: number;
  size: number;
}

/** The top-level boxes of an MP4 byte stream; throws when a size runs past the end. */
export function topLevelBoxes(data: Buffer): TopLevelBox[] {
  const boxes: TopLevelBox[] = [];
  for (let offset = 0; offset < data.length;) {
    if (offset + 8 > data.length) throw new Error(`truncated box header at ${offset}`);
    const size = data.readUInt32BE(offset);
    const type = data.toString('latin1', offset + 4, offset + 8);
    if (size < 8 || offset + size > data.length) throw new Error(`box ${type} at ${offset} has size ${size}, past the end`);
    boxes.push({ type, offset, size });
    offset += size;
  }
  return boxes;
}

/** Finds the first box of `type` anywhere inside `data` by walking containers (moov, trak, mdia...). */
export function findBox(data: Buffer, path: string[]): Buffer | undefined {
  const containers = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'mvex', 'moof', 'traf']);
  let scope = data;
  for (const wanted of path) {
    let found: Buffer | undefined;
    for (let offset = 0; offset + 8 <= scope.length;) {
      const size = scope.readUInt32BE(offset);
      const type = scope.toString('latin1', offset + 4, offset + 8);
      if (size < 8) return undefined;
      if (type === wanted) {
        found = scope.subarray(offset, offset + size);
        break;
      }
      offset += size;
    }
    if (!found) return undefined;
    scope = containers.has(wanted) ? found.subarray(8) : found;
  }
  return scope;
}

let sequence = 0;

/** A video MediaFrame from an H.264 access unit (NAL units without start codes). */
export function h264Frame(units: Buffer[], timestamp: number): MediaFrame {
  return {
    kind: 'video', codec: 'H264', clockRate: 90000, timestamp: timestamp >>> 0, sequenceNumber: sequence++ & 0xffff,
    keyframe: units.some((u) => (u[0]! & 0x1f) === 5), units, packets: [], receivedAt: 0,
    byteLength: units.reduce((sum, u) => sum + u.length, 0),
  };
}

/** An audio MediaFrame (one access unit). */
export function audioFrame(codec: 'AAC' | 'PCMU', payload: Buffer, timestamp: number, clockRate: number): MediaFrame {
  return {
    kind: 'audio', codec, clockRate, timestamp: timestamp >>> 0, sequenceNumber: sequence++ & 0xffff, keyframe: true,
    units: [payload], packets: [], receivedAt: 0, byteLength: payload.length,
  };
}

/** One sample's bytes (AVCC: 4-byte length-prefixed NAL units). */
export interface Sample {
  data: Buffer;
}

/**
 * The first sample of a moof+mdat fragment's first track (video, in this muxer's files), read
 * through the trun's data offset (from the moof) and its first sample size (after the duration).
 */
export function firstSample(fragment: Buffer): Sample {
  const trun = findBox(fragment, ['moof', 'traf', 'trun'])!;
  const dataOffset = trun.readInt32BE(16);
  const size = trun.readUInt32BE(20 + 4);
  return { data: fragment.subarray(dataOffset, dataOffset + size) };
}

/** The sample count of a fragment's first track. */
export function sampleCount(fragment: Buffer): number {
  return findBox(fragment, ['moof', 'traf', 'trun'])!.readUInt32BE(12);
}

/** The IDR slice NAL of an AVCC sample. */
export function idrOf(sample: Sample): Buffer | undefined {
  for (let at = 0; at + 4 <= sample.data.length;) {
    const length = sample.data.readUInt32BE(at);
    const nal = sample.data.subarray(at + 4, at + 4 + length);
    if ((nal[0]! & 0x1f) === 5) return nal;
    at += 4 + length;
  }
  return undefined;
}
