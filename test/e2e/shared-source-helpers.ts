// Shared bits of the test/e2e/shared-source*.test.ts suites (issue 3, "Done when"): sinks that
// record what a Source delivers and when, continuity checks on the Source's output timeline, and
// real ffmpeg as the judge of whether the H.264 we hand out decodes.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Source } from '../../src/media/source.js';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../../src/media/types.js';
import type { Logger } from '../../src/util/logger.js';
import { spawnTracked } from '../helpers/processes.js';

import { sleep } from '../helpers/wait.js';

export { sleep, waitFor } from '../helpers/wait.js';

export interface RecordedFrame {
  frame: MediaFrame;
  /** performance.now() when the Source handed the frame to the sink. */
  at: number;
}

/**
 * A FrameSink that keeps every frame it accepts with its arrival time, so a test can check the
 * delivered timeline afterwards. `accept` lets a test make it refuse (a congested viewer).
 */
export class RecordingSink implements FrameSink {
  readonly frames: RecordedFrame[] = [];
  readonly states: Array<{ state: SourceState; at: number }> = [];
  tracks: ReadonlyArray<TrackDescription> = [];
  /** Every frame the Source offered, accepted or not. */
  offered = 0;
  accept: (frame: MediaFrame) => boolean = () => true;

  write(frame: MediaFrame): boolean {
    this.offered++;
    if (!this.accept(frame)) return false;
    this.frames.push({ frame, at: performance.now() });
    return true;
  }

  onState(state: SourceState): void {
    this.states.push({ state, at: performance.now() });
  }

  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracks = tracks;
  }

  of(kind: 'video' | 'audio'): RecordedFrame[] {
    return this.frames.filter((r) => r.frame.kind === kind);
  }

  count(kind: 'video' | 'audio'): number {
    let n = 0;
    for (const r of this.frames) if (r.frame.kind === kind) n++;
    return n;
  }
}

/** A recording Logger, to check what an operator would read (one warning, no password). */
export interface RecordingLogger extends Logger {
  readonly lines: string[];
}

export function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const add = (level: string) => (message: string, ...rest: unknown[]): void => {
    lines.push(`${level} ${[message, ...rest.map(String)].join(' ')}`);
  };
  return { lines, info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

/**
 * The Source's output timeline for one kind: each frame's sequence number starts where the previous
 * frame's packets ended (no gap, no reuse), and timestamps move strictly forward (no jump back, no
 * repeat), across reconnects too. Returns the largest timestamp step in seconds, for reporting.
 */
export function assertContinuous(frames: ReadonlyArray<MediaFrame>, label: string): { maxStepS: number } {
  let maxStepS = 0;
  for (let i = 1; i < frames.length; i++) {
    const previous = frames[i - 1]!;
    const frame = frames[i]!;
    const expected = (previous.sequenceNumber + previous.packets.length) & 0xffff;
    assert.equal(frame.sequenceNumber, expected, `${label}: sequence number at frame ${i} (previous ${previous.sequenceNumber} + ${previous.packets.length} packets)`);
    const step = (frame.timestamp - previous.timestamp) | 0;
    assert.ok(step > 0, `${label}: timestamp moves forward at frame ${i} (step ${step})`);
    maxStepS = Math.max(maxStepS, step / frame.clockRate);
  }
  return { maxStepS };
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** H.264 NAL unit types of a frame, in order. */
export function nalTypes(frame: MediaFrame): number[] {
  return frame.units.map((unit) => unit[0]! & 0x1f);
}

/**
 * A keyframe a fresh decoder can start on: an SPS and a PPS before the IDR slice. (Repeats are
 * legal: this camera sends SPS/PPS twice in the IDR it forces for a new viewer.)
 */
export function assertKeyframeWithParameterSets(frame: MediaFrame | undefined, label: string): void {
  assert.ok(frame?.kind === 'video' && frame.keyframe, `${label}: a video keyframe`);
  const types = nalTypes(frame);
  const idr = types.indexOf(5);
  const sps = types.indexOf(7);
  const pps = types.indexOf(8);
  assert.ok(idr >= 0 && sps >= 0 && pps > sps && idr > pps, `${label}: SPS, PPS, then IDR (NAL types ${types.join(',')})`);
}

/** Video frames as an Annex B elementary stream, the way a decoder reads a file. */
export function annexB(frames: ReadonlyArray<MediaFrame>): Buffer {
  const parts: Buffer[] = [];
  for (const frame of frames) {
    if (frame.kind !== 'video') continue;
    for (const unit of frame.units) parts.push(START_CODE, unit);
  }
  return Buffer.concat(parts);
}

export interface DecodeReport {
  code: number | null;
  /** Frames ffmpeg decoded (its last `frame=` progress line). */
  frames: number;
  stderr: string;
}

/**
 * Pipes an H.264 Annex B stream into `ffmpeg -xerror -f h264 -i - -f null -`: exit code 0 and an
 * empty stderr at level error mean every frame decoded from a fresh decoder, which is exactly what a
 * new viewer's decoder is.
 */
export async function decodeH264(stream: Buffer, timeoutMs = 20_000): Promise<DecodeReport> {
  const proc = spawnTracked(
    'ffmpeg',
    ['-hide_banner', '-nostats', '-v', 'error', '-xerror', '-progress', 'pipe:1', '-f', 'h264', '-i', '-', '-f', 'null', '-'],
    { name: 'ffmpeg-decode', keepOutputChars: 1024 * 1024 },
  );
  const timer = setTimeout(() => void proc.kill(500), timeoutMs);
  proc.child.stdin!.end(stream);
  const info = await proc.exited;
  clearTimeout(timer);
  const frames = Number([...proc.stdoutText().matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
  return { code: info.code, frames, stderr: proc.stderrText().trim() };
}

/** Asserts that ffmpeg decodes `frames` cleanly and returns how many pictures it got. */
export async function assertDecodes(frames: ReadonlyArray<MediaFrame>, label: string): Promise<number> {
  const video = frames.filter((f) => f.kind === 'video');
  assert.ok(video.length > 0, `${label}: no video frames to decode`);
  const report = await decodeH264(annexB(video));
  assert.equal(report.code, 0, `${label}: ffmpeg -xerror failed: ${report.stderr}`);
  assert.equal(report.stderr, '', `${label}: ffmpeg complained`);
  assert.equal(report.frames, video.length, `${label}: ffmpeg decoded ${report.frames} of ${video.length} frames`);
  return report.frames;
}

/** Records every state the Source goes through, with the time. */
export function recordStates(source: Source): { states: Array<{ state: SourceState; at: number }>; stop: () => void } {
  const states: Array<{ state: SourceState; at: number }> = [];
  const listener = (state: SourceState): void => {
    states.push({ state, at: performance.now() });
  };
  source.on('state', listener);
  return { states, stop: () => source.off('state', listener) };
}

// Memory figures should compare live data, not GC timing: expose a full GC to the tests.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * process.memoryUsage() after full GCs. V8 frees ArrayBuffer backing stores (every Buffer's bytes)
 * concurrently after a GC, so collect, give the sweeper a moment, and collect again.
 */
export async function liveMemory(): Promise<NodeJS.MemoryUsage> {
  gc();
  await sleep(50);
  gc();
  return process.memoryUsage();
}

/** Heap plus Buffer bytes, after full GCs. */
export async function liveBytes(): Promise<number> {
  const m = await liveMemory();
  return m.heapUsed + m.arrayBuffers;
}

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
