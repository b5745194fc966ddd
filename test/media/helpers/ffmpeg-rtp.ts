/**
 * Real RTP packets from an independent packetizer: ffmpeg's RTP muxer sends an elementary stream to
 * a UDP socket on loopback and we keep every datagram. Used to check our depacketizers against
 * somebody else's STAP-A/AP/FU choices, not just our own.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

export async function captureFfmpegRtp(file: string, format: 'h264' | 'hevc', options: { maxPayload?: number; mode0?: boolean } = {}): Promise<Buffer[]> {
  const flags = options.mode0 ? ['-rtpflags', 'h264_mode0'] : [];
  return captureRtp((port) => [
    '-readrate', '4', '-f', format, '-framerate', '25', '-i', file,
    '-c', 'copy', ...flags, '-f', 'rtp', `rtp://127.0.0.1:${port}?pkt_size=${(options.maxPayload ?? 1188) + 12}`,
  ]);
}

/** Every RTP datagram an ffmpeg run sends to a loopback port; `args(port)` is everything after `-loglevel`. */
export async function captureRtp(args: (port: number) => string[]): Promise<Buffer[]> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  const packets: Buffer[] = [];
  socket.on('message', (message) => packets.push(message));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`ffmpeg exited with ${String(code)}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    child.kill('SIGKILL');
    socket.close();
  }
  return packets;
}
