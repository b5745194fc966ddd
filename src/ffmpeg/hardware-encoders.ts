/**
 * Hardware video encoders for the transcoded variants (src/transcode/): a Raspberry Pi's
 * h264_v4l2m2m, Intel and AMD graphics through VA-API (h264_vaapi, vp8_vaapi) or Quick Sync
 * (h264_qsv), NVIDIA's h264_nvenc. An ffmpeg that lists one has it compiled in, which says nothing
 * about this machine having the device, the driver or the permission; so each candidate is tried
 * once, on first need, with a one-second encode of a test picture, and only one that works is used.
 * Software (libx264, libvpx) is the answer whenever none does, and a hardware encoder that fails
 * later is dropped for good (variant-upstream.ts starts that variant again in software).
 *
 * Each recipe says what the encoder needs around it, one commented flag per line like the rest of
 * src/ffmpeg/: input options (a device), the end of the filter chain (uploading frames to the GPU),
 * and its own encoder flags.
 */
import { spawn } from 'node:child_process';
import type { FfmpegCapabilities } from './capabilities.js';
import type { VariantCodec } from './variant-codec.js';

export interface HardwareEncoder {
  /** ffmpeg's encoder name. */
  name: string;
  codec: VariantCodec;
  /** Before `-i`: the device. */
  inputArgs: string[];
  /** Appended to the variant's `-vf` chain (after scaling): pixel format, upload to the device. */
  filter: string;
  /** The encoder and its rate flags, for `kbps`. */
  encoderArgs(kbps: number): string[];
}

const VAAPI_DEVICE = '/dev/dri/renderD128';

/** In the order tried: the dedicated ones first (a Pi's, then a discrete GPU's), then integrated graphics. */
export const HARDWARE_ENCODERS: ReadonlyArray<HardwareEncoder> = [
  {
    name: 'h264_v4l2m2m',
    codec: 'H264',
    inputArgs: [],
    filter: 'format=yuv420p', // the Pi's encoder takes planar 4:2:0 from memory
    encoderArgs: (kbps) => [
      '-c:v', 'h264_v4l2m2m',
      '-b:v', `${kbps}k`, // its rate control is a target, no ceiling to set
    ],
  },
  {
    name: 'h264_nvenc',
    codec: 'H264',
    inputArgs: [],
    filter: 'format=yuv420p',
    encoderArgs: (kbps) => [
      '-c:v', 'h264_nvenc',
      '-preset', 'p1', // the fastest preset
      '-tune', 'll', // low latency
      '-zerolatency', '1', // no reordering delay
      '-bf', '0', // no B-frames: browsers' Constrained Baseline has none
      '-profile:v', 'baseline',
      '-b:v', `${kbps}k`,
      '-maxrate', `${kbps}k`, // a ceiling: a busy scene must not flood a phone on Wi-Fi
    ],
  },
  {
    name: 'h264_vaapi',
    codec: 'H264',
    inputArgs: ['-vaapi_device', VAAPI_DEVICE], // the first render node: the GPU
    filter: 'format=nv12,hwupload', // VA-API encodes NV12 surfaces on the GPU
    encoderArgs: (kbps) => [
      '-c:v', 'h264_vaapi',
      '-profile:v', 'constrained_baseline', // what the plugin offers browsers (42e01f)
      '-bf', '0',
      '-b:v', `${kbps}k`,
      '-maxrate', `${kbps}k`,
    ],
  },
  {
    name: 'h264_qsv',
    codec: 'H264',
    inputArgs: ['-init_hw_device', 'qsv=hw', '-filter_hw_device', 'hw'], // Quick Sync on the Intel GPU
    filter: 'format=nv12,hwupload=extra_hw_frames=64',
    encoderArgs: (kbps) => [
      '-c:v', 'h264_qsv',
      '-preset', 'veryfast',
      '-profile:v', 'baseline',
      '-look_ahead', '0', // no look-ahead: each frame leaves as soon as it is encoded
      '-b:v', `${kbps}k`,
      '-maxrate', `${kbps}k`,
    ],
  },
  {
    name: 'vp8_vaapi',
    codec: 'VP8',
    inputArgs: ['-vaapi_device', VAAPI_DEVICE],
    filter: 'format=nv12,hwupload',
    encoderArgs: (kbps) => [
      '-c:v', 'vp8_vaapi',
      '-b:v', `${kbps}k`,
      '-maxrate', `${kbps}k`,
    ],
  },
];

/** The hardware encoders for `codec` that this ffmpeg has compiled in, in the order to try them. */
export function hardwareCandidates(caps: Pick<FfmpegCapabilities, 'encoders'>, codec: VariantCodec): HardwareEncoder[] {
  return HARDWARE_ENCODERS.filter((e) => e.codec === codec && caps.encoders.has(e.name));
}

/** The command line of the one-second trial: a test picture through the encoder, into nothing. */
export function trialArgs(encoder: HardwareEncoder): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel', 'error', // only why it failed
    ...encoder.inputArgs,
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', // a moving picture the size of a small variant
    '-frames:v', '25',
    '-vf', encoder.filter,
    ...encoder.encoderArgs(500),
    '-f', 'null', '-',
  ];
}

export interface TrialResult {
  ok: boolean;
  /** ffmpeg's last error line, when it failed. */
  reason?: string;
}

/** Runs the trial; a trial that hangs (a wedged driver) counts as failed after `timeoutMs`. */
export function tryEncoder(ffmpegPath: string, encoder: HardwareEncoder, timeoutMs = 10_000): Promise<TrialResult> {
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const finish = (result: TrialResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const child = spawn(ffmpegPath, trialArgs(encoder), { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ ok: false, reason: `no answer in ${Number((timeoutMs / 1000).toFixed(1))} s` });
    }, timeoutMs);
    child.once('error', (error) => finish({ ok: false, reason: error.message }));
    child.once('close', (code) => {
      // The first line names the cause ("No VA display found", "Could not find a valid device");
      // the ones after it are ffmpeg giving up in general words.
      const first = stderr.trim().split('\n').map((line) => line.replace(/^\[[^\]]+\] /, '').trim()).find((line) => line !== '');
      finish(code === 0 ? { ok: true } : { ok: false, reason: first ?? `exit code ${String(code)}` });
    });
  });
}

export interface EncoderChoiceLog {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * Picks, once per codec and on first need, the first hardware encoder whose trial works; remembers
 * encoders that failed later. `choose` resolves to undefined for software.
 */
export class HardwareEncoderChoice {
  private readonly choices = new Map<VariantCodec, Promise<HardwareEncoder | undefined>>();
  private readonly broken = new Set<string>();

  constructor(
    private readonly caps: Pick<FfmpegCapabilities, 'path' | 'encoders'>,
    private readonly log: EncoderChoiceLog,
    private readonly trial: (encoder: HardwareEncoder) => Promise<TrialResult> = (encoder) => tryEncoder(caps.path, encoder),
  ) {}

  choose(codec: VariantCodec): Promise<HardwareEncoder | undefined> {
    let choice = this.choices.get(codec);
    if (!choice) {
      choice = this.pick(codec);
      this.choices.set(codec, choice);
    }
    return choice.then((encoder) => (encoder && !this.broken.has(encoder.name) ? encoder : undefined));
  }

  /** A chosen encoder failed while encoding: software from now on, for this codec. */
  failed(encoder: HardwareEncoder, reason: string): void {
    if (this.broken.has(encoder.name)) return;
    this.broken.add(encoder.name);
    this.log.warn(`the hardware encoder ${encoder.name} failed (${reason}); ${encoder.codec === 'H264' ? 'libx264' : 'libvpx'} encodes from now on`);
  }

  private async pick(codec: VariantCodec): Promise<HardwareEncoder | undefined> {
    const candidates = hardwareCandidates(this.caps, codec);
    const failures: string[] = [];
    for (const encoder of candidates) {
      const result = await this.trial(encoder);
      if (result.ok) {
        this.log.info(`using the hardware encoder ${encoder.name} for ${codec === 'H264' ? 'H.264' : 'VP8'} variants (its trial encode worked)${failures.length ? `; ${failures.join('; ')}` : ''}`);
        return encoder;
      }
      failures.push(`${encoder.name} is compiled in but did not work here: ${result.reason ?? 'failed'}`);
    }
    if (failures.length) this.log.info(`${failures.join('; ')}; ${codec === 'H264' ? 'libx264' : 'libvpx'} encodes ${codec === 'H264' ? 'H.264' : 'VP8'} variants`);
    return undefined;
  }
}
