/**
 * The initialization segment of a fragmented MP4 (ISO/IEC 14496-12 8.8): `ftyp`, then a `moov`
 * whose sample tables are empty (every sample lives in the fragments) and whose `mvex` has one
 * `trex` per track, which is what tells a reader that `moof` fragments follow.
 */
import { UNITY_MATRIX, box, fourcc, fullBox, u16, u32 } from './boxes.js';
import { avc1, mp4a, type AacTrackConfig, type AvcTrackConfig } from './sample-entries.js';

export const VIDEO_TRACK_ID = 1;
export const AUDIO_TRACK_ID = 2;
/** H.264 timestamps are in RTP's 90 kHz clock; the track keeps it, so no rounding happens. */
export const VIDEO_TIMESCALE = 90_000;

export interface InitSegmentConfig {
  video: AvcTrackConfig;
  /** Absent: a video-only recording. */
  audio?: AacTrackConfig;
}

function ftyp(): Buffer {
  // iso5: fragments with tfdt and default-base-is-moof, which is what the fragments use.
  return box('ftyp', fourcc('iso5'), u32(512), ...['iso5', 'iso6', 'mp41', 'avc1'].map(fourcc));
}

function mvhd(nextTrackId: number): Buffer {
  return fullBox(
    'mvhd', 0, 0,
    u32(0), u32(0), // creation, modification time
    u32(1000), // timescale
    u32(0), // duration: unknown, the fragments carry it
    u32(0x00010000), // rate 1.0
    u16(0x0100), // volume 1.0
    Buffer.alloc(10), // reserved
    UNITY_MATRIX,
    Buffer.alloc(24), // pre_defined
    u32(nextTrackId),
  );
}

interface TrackLayout {
  id: number;
  handler: 'vide' | 'soun';
  timescale: number;
  width: number;
  height: number;
  sampleEntry: Buffer;
}

function trak(t: TrackLayout): Buffer {
  const audio = t.handler === 'soun';
  const tkhd = fullBox(
    'tkhd', 0, 0x000003, // enabled, in movie
    u32(0), u32(0), // creation, modification time
    u32(t.id),
    u32(0), // reserved
    u32(0), // duration
    Buffer.alloc(8), // reserved
    u16(0), u16(audio ? 1 : 0), // layer, alternate_group
    u16(audio ? 0x0100 : 0), u16(0), // volume, reserved
    UNITY_MATRIX,
    u32(t.width << 16), u32(t.height << 16),
  );
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(t.timescale), u32(0), u16(0x55c4 /* 'und' */), u16(0));
  const hdlr = fullBox(
    'hdlr', 0, 0,
    u32(0), fourcc(t.handler), Buffer.alloc(12),
    Buffer.from(audio ? 'SoundHandler\0' : 'VideoHandler\0', 'latin1'),
  );
  const header = audio ? fullBox('smhd', 0, 0, u16(0), u16(0)) : fullBox('vmhd', 0, 1, Buffer.alloc(8));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), t.sampleEntry),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  return box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', header, dinf, stbl)));
}

function trex(trackId: number): Buffer {
  // Defaults are all zero: every trun states each sample's duration, size and flags.
  return fullBox('trex', 0, 0, u32(trackId), u32(1), u32(0), u32(0), u32(0));
}

/** `ftyp` + `moov` for one H.264 track and an optional AAC track. */
export function initSegment(config: InitSegmentConfig): Buffer {
  const tracks: TrackLayout[] = [{
    id: VIDEO_TRACK_ID,
    handler: 'vide',
    timescale: VIDEO_TIMESCALE,
    width: config.video.width,
    height: config.video.height,
    sampleEntry: avc1(config.video),
  }];
  if (config.audio) {
    tracks.push({
      id: AUDIO_TRACK_ID,
      handler: 'soun',
      timescale: config.audio.sampleRate,
      width: 0,
      height: 0,
      sampleEntry: mp4a(AUDIO_TRACK_ID, config.audio),
    });
  }
  const moov = box(
    'moov',
    mvhd(tracks.length + 1),
    ...tracks.map(trak),
    box('mvex', ...tracks.map((t) => trex(t.id))),
  );
  return Buffer.concat([ftyp(), moov]);
}
