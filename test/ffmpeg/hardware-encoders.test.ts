/**
 * Hardware encoders for the variants (src/ffmpeg/hardware-encoders.ts) on a machine without a GPU:
 * which ones are candidates, what their command lines look like, how the trial reads an ffmpeg that
 * works, fails or hangs (shell scripts in ffmpeg's place), and what is chosen and remembered. The
 * variant using one, and falling back to software when it fails, is in test/transcode/variants.test.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HARDWARE_ENCODERS, HardwareEncoderChoice, hardwareCandidates, trialArgs, tryEncoder, type HardwareEncoder } from '../../src/ffmpeg/hardware-encoders.js';
import { variantArgs } from '../../src/ffmpeg/transcode-args.js';

const dir = mkdtempSync(join(tmpdir(), 'wrc-hw-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const encoder = (name: string): HardwareEncoder => HARDWARE_ENCODERS.find((e) => e.name === name)!;

describe('hardware encoders', () => {
  it('candidates are the compiled-in ones for the codec, a Pi\'s first', () => {
    const caps = { encoders: new Set(['libx264', 'h264_vaapi', 'h264_v4l2m2m', 'vp8_vaapi', 'hevc_vaapi']) };
    assert.deepEqual(hardwareCandidates(caps, 'H264').map((e) => e.name), ['h264_v4l2m2m', 'h264_vaapi']);
    assert.deepEqual(hardwareCandidates(caps, 'VP8').map((e) => e.name), ['vp8_vaapi']);
    assert.deepEqual(hardwareCandidates({ encoders: new Set(['libx264']) }, 'H264'), []);
  });

  it('a variant on VA-API: the device before -i, frames uploaded at the end of the filter chain, the hardware encoder instead of libx264', () => {
    const args = variantArgs('H264', { inputUrl: 'rtsp://127.0.0.1:8554/cam', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900, hardware: encoder('h264_vaapi') });
    const after = (flag: string): string => args[args.indexOf(flag) + 1]!;
    assert.ok(args.indexOf('-vaapi_device') < args.indexOf('-i'), 'an input option');
    assert.equal(after('-vaapi_device'), '/dev/dri/renderD128');
    assert.match(after('-vf'), /,format=nv12,hwupload$/);
    assert.equal(after('-c:v'), 'h264_vaapi');
    assert.equal(after('-profile:v'), 'constrained_baseline');
    assert.equal(after('-b:v'), '900k');
    assert.ok(!args.includes('libx264') && !args.includes('-preset'), 'no software flags left');
    const pi = variantArgs('H264', { inputUrl: 'rtsp://127.0.0.1:8554/cam', videoPort: 40000, maxWidth: 1280, maxHeight: 720, videoBitrateKbps: 900, hardware: encoder('h264_v4l2m2m') });
    assert.equal(pi[pi.indexOf('-c:v') + 1], 'h264_v4l2m2m');
    assert.equal(pi.indexOf('-vaapi_device'), -1);
    const trial = trialArgs(encoder('h264_qsv'));
    assert.deepEqual(trial.slice(trial.indexOf('-init_hw_device'), trial.indexOf('-init_hw_device') + 4), ['-init_hw_device', 'qsv=hw', '-filter_hw_device', 'hw']);
    assert.equal(trial.at(-1), '-');
  });

  it('the trial: exit 0 works; an error names ffmpeg\'s reason; a hang fails after the timeout; a missing ffmpeg fails', async () => {
    assert.deepEqual(await tryEncoder(script('works', 'exit 0'), encoder('h264_vaapi')), { ok: true });
    const noDevice = script('no-device', 'echo "[AVHWDeviceContext @ 0x5581] No VA display found for device /dev/dri/renderD128." >&2\necho "Device creation failed: -22." >&2\nexit 1');
    assert.deepEqual(await tryEncoder(noDevice, encoder('h264_vaapi')), { ok: false, reason: 'No VA display found for device /dev/dri/renderD128.' });
    const hang = script('hang', 'exec sleep 30');
    const started = Date.now();
    assert.deepEqual(await tryEncoder(hang, encoder('h264_vaapi'), 300), { ok: false, reason: 'no answer in 0.3 s' });
    assert.ok(Date.now() - started < 5000);
    assert.equal((await tryEncoder(join(dir, 'nothing-here'), encoder('h264_vaapi'))).ok, false);
  });

  it('chooses the first candidate whose trial works, tries each once however many ask, and drops one that failed later', async () => {
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) };
    const tried: string[] = [];
    const choice = new HardwareEncoderChoice({ path: 'ffmpeg', encoders: new Set(['h264_v4l2m2m', 'h264_vaapi', 'vp8_vaapi']) }, log, async (e) => {
      tried.push(e.name);
      return e.name === 'h264_v4l2m2m' ? { ok: false, reason: 'no /dev/video11' } : { ok: true };
    });
    const [a, b] = await Promise.all([choice.choose('H264'), choice.choose('H264')]);
    assert.equal(a?.name, 'h264_vaapi');
    assert.equal(b, a);
    assert.deepEqual(tried, ['h264_v4l2m2m', 'h264_vaapi'], 'one trial each');
    assert.deepEqual(lines, ['info using the hardware encoder h264_vaapi for H.264 variants (its trial encode worked); h264_v4l2m2m is compiled in but did not work here: no /dev/video11']);
    choice.failed(a!, 'its device went away');
    choice.failed(a!, 'again');
    assert.equal(await choice.choose('H264'), undefined, 'software from now on');
    assert.equal(lines.filter((l) => l.startsWith('warn')).length, 1);
    assert.match(lines.at(-1)!, /^warn the hardware encoder h264_vaapi failed \(its device went away\); libx264 encodes from now on$/);
    assert.equal((await choice.choose('VP8'))?.name, 'vp8_vaapi', 'VP8 chooses on its own');
    const none = new HardwareEncoderChoice({ path: 'ffmpeg', encoders: new Set(['libx264']) }, log, () => Promise.reject(new Error('never tried')));
    assert.equal(await none.choose('H264'), undefined);
  });
});
