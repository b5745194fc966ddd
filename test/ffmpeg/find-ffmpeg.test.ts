import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findFfmpeg, findOnPath, probeFfmpeg, summariseCapabilities } from '../../src/ffmpeg/find-ffmpeg.js';
import type { Logger } from '../../src/util/logger.js';

interface Captured extends Logger {
  lines: Array<{ level: string; text: string }>;
}

function capture(): Captured {
  const lines: Array<{ level: string; text: string }> = [];
  const at = (level: string) => (text: string) => lines.push({ level, text });
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

const ENCODERS = `Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V..... h264_vaapi           H.264/AVC (VAAPI) (codec h264)
 V....D libvpx               libvpx VP8 (codec vp8)
 A..... aac                  AAC (Advanced Audio Coding)
 A..... libopus              libopus Opus (codec opus)
 A..... libfdk_aac           Fraunhofer FDK AAC (codec aac)`;

const MUXERS = `File formats:
 D. = Demuxing supported
 .E = Muxing supported
 --
  E mp4             MP4 (MPEG-4 Part 14)
  E rtp             RTP output
  E tee             Multiple muxer tee`;

let dir = '';

/** A shell script that answers like ffmpeg (or misbehaves, for the failure cases). */
function fakeBinary(name: string, body: string, mode = 0o755): string {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, mode);
  return path;
}

function fakeFfmpeg(name: string, version = '6.1-fake'): string {
  return fakeBinary(name, `case "$2" in
  -version) echo "ffmpeg version ${version} Copyright (c) 2000-2024 the FFmpeg developers" ;;
  -encoders) cat <<'EOT'
${ENCODERS}
EOT
  ;;
  -muxers) cat <<'EOT'
${MUXERS}
EOT
  ;;
  *) exit 1 ;;
esac`);
}

const none = async () => undefined;

describe('findFfmpeg', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ffmpeg-find-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the videoProcessor setting first and records what it can do', async () => {
    const configured = fakeFfmpeg('configured/ffmpeg', '6.1-configured');
    const bundled = fakeFfmpeg('bundled/ffmpeg', '7.0-bundled');
    const log = capture();
    const caps = await findFfmpeg({ log, videoProcessor: configured, bundledPath: async () => bundled, searchPath: '' });
    assert.ok(caps);
    assert.equal(caps.path, configured);
    assert.equal(caps.source, 'videoProcessor');
    assert.equal(caps.version, '6.1-configured');
    assert.equal(caps.majorVersion, 6);
    assert.deepEqual(caps.has, { libx264: true, libopus: true, libvpx: true, libvpxVp9: false, libfdkAac: true, aac: true, pcmMulaw: false, pcmAlaw: false, tee: true, rtp: true });
    assert.deepEqual(caps.hardwareH264Encoders, ['h264_vaapi']);
    assert.ok(caps.muxers.has('mp4'));
    assert.deepEqual(log.lines.filter((l) => l.level === 'info').map((l) => l.text), [`Using ffmpeg 6.1-configured from ffmpeg.videoProcessor "${configured}" (${configured}).`]);
    assert.match(summariseCapabilities(caps), /libx264 yes, .*libfdk_aac yes.*hardware H\.264 encoders compiled in: h264_vaapi/);
  });

  it('falls back to ffmpeg-for-homebridge when the setting is wrong, and says so', async () => {
    const bundled = fakeFfmpeg('bundled2/ffmpeg', '7.0-bundled');
    const log = capture();
    const caps = await findFfmpeg({ log, videoProcessor: join(dir, 'missing/ffmpeg'), bundledPath: async () => bundled, searchPath: '' });
    assert.equal(caps?.source, 'ffmpeg-for-homebridge');
    assert.equal(caps?.path, bundled);
    const warning = log.lines.find((l) => l.level === 'warn');
    assert.match(warning!.text, /The ffmpeg set in the plugin settings \(.*missing\/ffmpeg\) cannot be used: the file does not exist\. Looking for another ffmpeg\./);
  });

  it('falls back to ffmpeg on PATH when ffmpeg-for-homebridge has no binary', async () => {
    const onPath = fakeFfmpeg('pathdir/ffmpeg');
    const caps = await findFfmpeg({ log: capture(), bundledPath: none, searchPath: `${join(dir, 'nothing-here')}:${join(dir, 'pathdir')}` });
    assert.equal(caps?.source, 'PATH');
    assert.equal(caps?.path, onPath);
  });

  it('looks a bare command name in the setting up on PATH', async () => {
    const named = fakeFfmpeg('named/ffmpeg-custom');
    const caps = await findFfmpeg({ log: capture(), videoProcessor: 'ffmpeg-custom', bundledPath: none, searchPath: join(dir, 'named') });
    assert.equal(caps?.source, 'videoProcessor');
    assert.equal(caps?.path, named);
    const log = capture();
    assert.equal(await findFfmpeg({ log, videoProcessor: 'ffmpeg-nowhere', bundledPath: none, searchPath: join(dir, 'named') }), undefined);
    assert.match(log.lines[0]!.text, /"ffmpeg-nowhere" is not on PATH/);
  });

  it('logs one clear error (how to install) and resolves undefined when there is none', async () => {
    const log = capture();
    const caps = await findFfmpeg({ log, bundledPath: none, searchPath: join(dir, 'empty') });
    assert.equal(caps, undefined);
    const errors = log.lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.text, /^ffmpeg was not found/);
    assert.match(errors[0]!.text, /sudo apt-get install ffmpeg/);
    assert.match(errors[0]!.text, /ffmpeg\.videoProcessor/);
    assert.match(errors[0]!.text, /Tried: ffmpeg-for-homebridge: .*; ffmpeg on PATH: none found\./);
  });

  it('explains why a candidate is unusable: not executable, failing, hanging, not ffmpeg', async () => {
    const cases: Array<[string, RegExp]> = [
      [fakeBinary('bad/noexec', 'echo hi', 0o644), /not executable/],
      [fakeBinary('bad/fails', 'echo "libavcodec.so.59: cannot open shared object file" >&2; exit 127'), /exit code 127\): libavcodec\.so\.59: cannot open shared object file/],
      [fakeBinary('bad/hangs', 'exec sleep 30'), /did not answer within 0\.3 s/],
      [fakeBinary('bad/other', 'echo "GNU bash, version 5"'), /not ffmpeg/],
    ];
    for (const [path, reason] of cases) {
      await assert.rejects(probeFfmpeg(path, 'videoProcessor', 300), reason, path);
      const log = capture();
      assert.equal(await findFfmpeg({ log, videoProcessor: path, bundledPath: none, searchPath: '', timeoutMs: 300 }), undefined);
      assert.match(log.lines.find((l) => l.level === 'warn')!.text, reason);
      assert.match(log.lines.find((l) => l.level === 'error')!.text, reason);
    }
  });

  it('warns when the ffmpeg found has no libx264', async () => {
    const path = fakeBinary('nox264/ffmpeg', `case "$2" in -version) echo "ffmpeg version 4.4" ;; -encoders) printf ' ------\\n A..... aac   AAC\\n' ;; -muxers) printf ' --\\n  E rtp  RTP\\n' ;; esac`);
    const log = capture();
    const caps = await findFfmpeg({ log, videoProcessor: path, bundledPath: none, searchPath: '' });
    assert.equal(caps?.has.libx264, false);
    assert.equal(caps?.has.rtp, true);
    assert.match(log.lines.find((l) => l.level === 'warn')!.text, /has no libx264/);
  });

  it('finds executables on a PATH like `which`', async () => {
    const path = fakeFfmpeg('which/ffmpeg');
    fakeBinary('which-dir-only/ffmpeg/keep', 'true');
    assert.equal(await findOnPath('ffmpeg', `${join(dir, 'which-dir-only')}:${join(dir, 'which')}`), path);
    assert.equal(await findOnPath('ffmpeg', ''), undefined);
  });
});

describe('findFfmpeg with the real ffmpeg', () => {
  it('reads Debian\'s ffmpeg: libx264, libopus, libvpx, tee and rtp', async () => {
    const caps = await probeFfmpeg('/usr/bin/ffmpeg', 'PATH');
    assert.match(caps.version, /^\d+\.\d+/);
    assert.ok(caps.majorVersion && caps.majorVersion >= 4);
    assert.ok(caps.encoders.size > 50, String(caps.encoders.size));
    assert.ok(caps.has.libx264 && caps.has.libopus && caps.has.libvpx && caps.has.aac);
    assert.ok(caps.has.tee && caps.has.rtp);
    assert.equal(caps.has.libfdkAac, caps.encoders.has('libfdk_aac'));
    for (const name of caps.hardwareH264Encoders) assert.match(name, /^h264_/);
  });

  it('is found with the default search (ffmpeg-for-homebridge has no binary offline)', async () => {
    const log = capture();
    const caps = await findFfmpeg({ log });
    assert.ok(caps, JSON.stringify(log.lines));
    assert.ok(['ffmpeg-for-homebridge', 'PATH'].includes(caps.source));
    assert.match(log.lines.find((l) => l.level === 'info')!.text, /^Using ffmpeg \S+ from /);
  });
});
