// ffmpeg's last lines → a cause in plain words, ffmpeg's own reason quoted, and what a retry could change.
// The lines are what ffmpeg 5.1 really prints (with -loglevel level+warning) in these situations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeDiagnosis, diagnoseFfmpeg } from '../../src/ffmpeg/ffmpeg-diagnosis.js';
import { FfmpegProcess, runningFfmpegCount } from '../../src/ffmpeg/ffmpeg-process.js';
import { silentLogger } from '../../src/util/logger.js';

const exit = (lines: string[], code: number | null = 1, signal: NodeJS.Signals | null = null) => ({ lines, code, signal });

describe('ffmpeg diagnosis', () => {
  it('a missing audio encoder: names it, quotes ffmpeg, and says audio goes', () => {
    const d = diagnoseFfmpeg(exit(['[error] Unknown encoder \'libfdk_aac\'']), { videoEncoder: 'copy', audioEncoder: 'libfdk_aac' });
    assert.equal(d.cause, 'encoder libfdk_aac not found in this ffmpeg: audio switched off for this stream');
    assert.equal(d.remedy, 'drop-audio');
    assert.equal(describeDiagnosis(d), 'encoder libfdk_aac not found in this ffmpeg: audio switched off for this stream. ffmpeg said: "Unknown encoder \'libfdk_aac\'"');
  });

  it('a missing video encoder falls back to libx264', () => {
    const d = diagnoseFfmpeg(exit(['[error] Unknown encoder \'h264_vaapi\'']), { videoEncoder: 'h264_vaapi' });
    assert.match(d.cause, /encoder h264_vaapi not found in this ffmpeg \(check ffmpeg\.videoEncoder\)/);
    assert.equal(d.remedy, 'default-video-encoder');
  });

  it('a bad preset from the user\'s options; chatter lines are not quoted', () => {
    const d = diagnoseFfmpeg(exit([
      '[tee @ 0x55d02ff9ffc0] [warning] Timestamps are unset in a packet for stream 0.',
      '[libx264 @ 0x5603a1b2c3d0] [error] Error setting preset/tune warp-speed/zerolatency.',
      '[error] Error initializing output stream 0:0 -- Error while opening encoder for output stream #0:0 - maybe incorrect parameters such as bit_rate, rate, width or height',
      '[libopus @ 0x5603a1b2c3e0] [warning] 1 frames left in the queue on closing',
    ]), { videoEncoder: 'libx264', audioEncoder: 'libopus', userOptions: true });
    assert.equal(d.cause, 'libx264 rejected its preset (check ffmpeg.encoderOptions)');
    assert.equal(d.remedy, 'default-video-encoder');
    assert.match(d.quote, /^"\[libx264\] Error setting preset\/tune warp-speed\/zerolatency\." \/ "Error initializing output stream 0:0/);
    assert.doesNotMatch(d.quote, /Timestamps|frames left/);
  });

  it('a probe that ended before the picture size was known asks for a longer probe, not a new encoder', () => {
    // What ffmpeg 5.1 printed in a loaded CI run (copy mode, Opus audio through the tee muxer).
    const d = diagnoseFfmpeg(exit([
      '[tee @ 0x55d02ff9ffc0] [error] dimensions not set',
      '[error] Could not write header for output file #0 (incorrect codec parameters ?): Invalid argument',
      '[error] Error initializing output stream 0:1 -- ',
    ]), { videoEncoder: 'copy', audioEncoder: 'libopus' });
    assert.equal(d.remedy, 'longer-probe');
    assert.match(d.cause, /stopped probing the re-stream before it knew the video's picture size/);
  });

  it('an unknown option', () => {
    const d = diagnoseFfmpeg(exit(['[error] Unrecognized option \'bogus\'.', '[fatal] Error splitting the argument list: Option not found']), { userOptions: true });
    assert.equal(d.cause, 'this ffmpeg does not know the option -bogus (check ffmpeg.encoderOptions)');
  });

  it('a hardware encoder without its device', () => {
    const d = diagnoseFfmpeg(exit(['[AVHWDeviceContext @ 0x1] [error] No VA display found for device /dev/dri/renderD128.']), { videoEncoder: 'h264_vaapi' });
    assert.match(d.cause, /hardware encoder h264_vaapi cannot reach its device/);
    assert.equal(d.remedy, 'default-video-encoder');
  });

  it('the re-stream refusing, a killed ffmpeg, and silence are all explained', () => {
    assert.match(diagnoseFfmpeg(exit(['[tcp @ 0x1] [error] Connection to tcp://127.0.0.1:8554?timeout=0 failed: Connection refused'])).cause, /re-stream did not answer/);
    assert.match(diagnoseFfmpeg(exit(['[rtsp @ 0x1] [error] method DESCRIBE failed: 404 Not Found'])).cause, /does not serve this camera/);
    assert.match(diagnoseFfmpeg(exit([], null, 'SIGKILL')).cause, /killed by the system/);
    const silent = diagnoseFfmpeg(exit([], 1));
    assert.equal(silent.cause, 'ffmpeg stopped with exit code 1 without saying why (turn on ffmpeg.debug to see all of its output)');
    assert.equal(silent.quote, '');
  });

  it('a real ffmpeg with a bogus option: the process wrapper keeps the lines and the diagnosis quotes them', async () => {
    const ffmpeg = new FfmpegProcess({ ffmpegPath: 'ffmpeg', args: ['-hide_banner', '-loglevel', 'level+warning', '-f', 'lavfi', '-i', 'testsrc=d=1', '-c:v', 'libx264', '-preset', 'nope', '-f', 'null', '-'], label: 'test', log: silentLogger });
    const result = await ffmpeg.exited;
    assert.notEqual(result.code, 0);
    const d = diagnoseFfmpeg(result, { videoEncoder: 'libx264' });
    assert.match(d.quote, /Error setting preset\/tune nope/);
    assert.equal(runningFfmpegCount(), 0);
  });

  it('stop() ends a running ffmpeg and resolves after it exited', async () => {
    const ffmpeg = new FfmpegProcess({ ffmpegPath: 'ffmpeg', args: ['-hide_banner', '-re', '-f', 'lavfi', '-i', 'testsrc=d=60', '-f', 'null', '-'], label: 'test', log: silentLogger });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(runningFfmpegCount(), 1);
    const result = await ffmpeg.stop(1000);
    assert.equal(result.requested, true);
    assert.equal(runningFfmpegCount(), 0);
    assert.equal(ffmpeg.running, false);
  });

  it('a binary that does not exist is reported, not thrown', async () => {
    const ffmpeg = new FfmpegProcess({ ffmpegPath: '/nonexistent/ffmpeg', args: [], label: 'test', log: silentLogger });
    const result = await ffmpeg.exited;
    assert.ok(result.spawnError);
    assert.match(diagnoseFfmpeg(result).cause, /binary is gone/);
  });
});
