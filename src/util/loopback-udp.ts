import { createSocket, type Socket } from 'node:dgram';

/** A UDP socket on 127.0.0.1 at a free port, for RTP from an ffmpeg the plugin runs. */
export async function bindLoopbackUdp(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}
