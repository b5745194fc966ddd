import { spawn, type ChildProcess } from 'node:child_process';
import { describeTracks, parseSdp } from '../rtsp/sdp.js';
import { plainTimers, type TimerSeam } from '../media/timers.js';
import type { UpstreamFactory, UpstreamHandlers, UpstreamSession } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { openLoopbackRtpReceiver } from '../rtp/rtp-receiver.js';

export interface DemoUpstreamOptions {
  /** The ffmpeg binary (from findFfmpeg). */
  ffmpegPath: string;
  width?: number;
  height?: number;
  fps?: number;
  /** Seconds between keyframes; 2 s keeps the GOP cache small and the first frame quick. */
  keyframeSeconds?: number;
  bitrateKbps?: number;
  log: Logger;
  /** How long ffmpeg may take to describe its output before the attempt fails. */
  startTimeoutMs?: number;
  /** The timer of that start timeout (default the real one); tests drive it with a manual clock. */
  timers?: TimerSeam;
}

/**
 * An UpstreamFactory whose "camera" is an ffmpeg drawing testsrc2 with a tone. Each session is one
 * ffmpeg process sending RTP to two loopback UDP sockets that the session owns; the SDP ffmpeg writes
 * on stdout describes the tracks, parsed by the same code as a real camera's DESCRIBE answer.
 */
export function demoUpstream(options: DemoUpstreamOptions): UpstreamFactory {
  return (handlers, signal) => openDemoSession(options, handlers, signal);
}

function ffmpegArguments(o: Required<Omit<DemoUpstreamOptions, 'log' | 'ffmpegPath' | 'startTimeoutMs' | 'timers'>>,
  videoPort: number, audioPort: number): string[] {
  return [
    '-hide_banner',
    '-loglevel', 'error',
    // Real time: a camera produces frames at its frame rate, not as fast as the CPU allows.
    '-re', '-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`,
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000',
    // Video: baseline H.264 like an entry-level camera, cheap to encode, no B-frames.
    '-map', '0:v',
    '-c:v', 'libx264',
    '-preset', 'ultrafast',
    '-tune', 'zerolatency',
    '-profile:v', 'baseline',
    '-pix_fmt', 'yuv420p',
    '-g', String(Math.round(o.fps * o.keyframeSeconds)),
    '-b:v', `${o.bitrateKbps}k`,
    '-f', 'rtp', '-payload_type', '96', `rtp://127.0.0.1:${videoPort}`,
    // Audio: G.711 mu-law at 8 kHz, what the DCS-7010L sends; quiet so the demo does not beep loudly.
    '-map', '1:a',
    '-af', 'volume=0.08',
    '-c:a', 'pcm_mulaw',
    '-ar', '8000',
    '-ac', '1',
    // 160 bytes of payload = 20 ms per packet, like a camera; ffmpeg's default packs ~180 ms.
    '-pkt_size', '172',
    '-f', 'rtp', '-payload_type', '0', `rtp://127.0.0.1:${audioPort}`,
    // The SDP of both outputs goes to stdout once ffmpeg has opened them.
    '-sdp_file', 'pipe:1',
  ];
}

async function openDemoSession(options: DemoUpstreamOptions, handlers: UpstreamHandlers,
  signal: AbortSignal): Promise<UpstreamSession> {
  const settings = {
    width: options.width ?? 1280,
    height: options.height ?? 720,
    fps: options.fps ?? 25,
    keyframeSeconds: options.keyframeSeconds ?? 2,
    bitrateKbps: options.bitrateKbps ?? 1500,
  };
  const sockets = [await openLoopbackRtpReceiver(), await openLoopbackRtpReceiver()];
  const ports = sockets.map((s) => s.port);
  let child: ChildProcess | undefined;
  let closed = false;
  let stderrTail = '';

  // Ends the session once, whoever ends it: ffmpeg dying, the Source closing it, or a failed start.
  const release = (): boolean => {
    if (closed) return false;
    closed = true;
    for (const s of sockets) s.close();
    if (child && child.exitCode === null) child.kill('SIGTERM');
    return true;
  };

  try {
    signal.throwIfAborted();
    child = spawn(options.ffmpegPath, ffmpegArguments(settings, ports[0]!, ports[1]!), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => { stderrTail = (stderrTail + d.toString()).slice(-2000); });
    const timers = options.timers ?? plainTimers;
    const sdpText = await new Promise<string>((resolve, reject) => {
      let text = '';
      const timer = timers.setTimeout(() => reject(new Error('the demo ffmpeg did not start in time')), options.startTimeoutMs ?? 10_000);
      const onAbort = () => reject(new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (fn: () => void) => { timers.clearTimeout(timer); signal.removeEventListener('abort', onAbort); fn(); };
      child!.stdout?.on('data', (d: Buffer) => {
        text += d.toString();
        // Both media sections are written at once; wait for the audio one.
        if (/m=audio[^\n]*\n(?:.*\n)*a=rtpmap/.test(text) || (text.includes('m=audio') && text.includes('m=video'))) {
          done(() => resolve(text));
        }
      });
      child!.once('error', (e) => done(() => reject(new Error(`the demo ffmpeg could not start: ${e.message}`))));
      child!.once('exit', (code) => done(() => reject(new Error(`the demo ffmpeg exited (code ${code}): ${stderrTail.trim() || 'no message'}`))));
    });
    const { tracks } = describeTracks(parseSdp(sdpText), 'rtp://127.0.0.1/demo');
    const ordered = [tracks.find((t) => t.kind === 'video'), tracks.find((t) => t.kind === 'audio')];
    if (!ordered[0]) throw new Error('the demo ffmpeg described no video track');
    const playable = ordered.filter((t) => t !== undefined);
    sockets.forEach((socket, i) => {
      const trackIndex = playable.indexOf(ordered[i]!);
      if (trackIndex < 0) return;
      socket.start({ onPacket: (packet) => handlers.onRtp(trackIndex, packet), onForeign: () => undefined });
    });
    child.once('exit', (code) => {
      if (release()) handlers.onClose(new Error(`the demo ffmpeg stopped (code ${code}): ${stderrTail.trim() || 'no message'}`));
    });
    options.log.debug(`Demo camera: ffmpeg sending ${settings.width}x${settings.height}@${settings.fps} H.264 + PCMU to 127.0.0.1:${ports.join(',')}`);
    return {
      tracks: playable,
      close: async () => {
        if (release()) handlers.onClose();
      },
    };
  } catch (error) {
    release();
    throw error instanceof Error ? error : new Error(String(error));
  }
}
