/**
 * One media fragment (ISO/IEC 14496-12 8.8.4): `moof` (`mfhd` with the sequence number, then a
 * `traf` per track with `tfhd`, `tfdt` and a `trun` listing every sample's duration, size, flags and
 * composition offset) followed by one `mdat` holding the tracks' samples back to back. Offsets are
 * relative to the `moof` (default-base-is-moof), so a fragment stands alone.
 */
import { box, fullBox, u32, u64 } from './boxes.js';

export interface Fmp4Sample {
  data: Buffer;
  /** In the track's timescale. */
  duration: number;
  /** A sync sample (IDR; every audio sample). */
  sync: boolean;
}

export interface TrackRun {
  trackId: number;
  /** Decode time of the first sample, in the track's timescale, from the start of the recording. */
  baseDecodeTime: number;
  samples: ReadonlyArray<Fmp4Sample>;
}

const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
/** The `trun` flags (14496-12 8.8.8.1) this writer sets: a data offset and all four per-sample fields. */
const TRUN = { dataOffset: 0x000001, sampleDuration: 0x000100, sampleSize: 0x000200, sampleFlags: 0x000400, compositionOffset: 0x000800 };
const TRUN_FLAGS = Object.values(TRUN).reduce((flags, flag) => flags | flag, 0);

/** sample_depends_on = 2 (depends on no other sample). */
const SYNC_SAMPLE_FLAGS = 0x02000000;
/** sample_depends_on = 1 and sample_is_non_sync_sample = 1. */
const NON_SYNC_SAMPLE_FLAGS = 0x01010000;

/** Bytes of a `trun` before its sample table, and per sample. */
const TRUN_HEADER_BYTES = 8 + 4 + 4 + 4;
const TRUN_SAMPLE_BYTES = 16;

function traf(run: TrackRun, dataOffset: number): Buffer {
  const entries = run.samples.map((s) => Buffer.concat([
    u32(s.duration),
    u32(s.data.length),
    u32(s.sync ? SYNC_SAMPLE_FLAGS : NON_SYNC_SAMPLE_FLAGS),
    u32(0), // composition offset: the camera streams carry no B-frames HomeKit would reorder
  ]));
  return box(
    'traf',
    fullBox('tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF, u32(run.trackId)),
    fullBox('tfdt', 1, 0, u64(run.baseDecodeTime)),
    fullBox('trun', 0, TRUN_FLAGS, u32(run.samples.length), u32(dataOffset), ...entries),
  );
}

/** `moof` + `mdat` for the given runs (empty runs are left out). */
export function mediaFragment(sequenceNumber: number, runs: ReadonlyArray<TrackRun>): Buffer {
  const used = runs.filter((r) => r.samples.length > 0);
  if (used.length === 0) throw new Error('fMP4: a fragment needs at least one sample');
  const mfhd = fullBox('mfhd', 0, 0, u32(sequenceNumber));
  // The moof's size does not depend on the offsets written in it, so it is known up front.
  const trafBytes = used.map((r) => 8 + (8 + 4 + 4) + (8 + 4 + 8) + TRUN_HEADER_BYTES + r.samples.length * TRUN_SAMPLE_BYTES);
  const moofSize = 8 + mfhd.length + trafBytes.reduce((a, b) => a + b, 0);
  let offset = moofSize + 8; // past the mdat header
  const trafs: Buffer[] = [];
  for (const run of used) {
    trafs.push(traf(run, offset));
    offset += run.samples.reduce((sum, s) => sum + s.data.length, 0);
  }
  const moof = box('moof', mfhd, ...trafs);
  if (moof.length !== moofSize) throw new Error(`fMP4: moof size ${moof.length} differs from the planned ${moofSize}`);
  return Buffer.concat([moof, box('mdat', ...used.flatMap((r) => r.samples.map((s) => s.data)))]);
}
