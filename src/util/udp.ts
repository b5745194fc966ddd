import type { Socket } from 'node:dgram';

/** Binds `socket` and resolves with its port; a bind error rejects once and leaves no listener behind. */
export function bindUdpSocket(socket: Socket, host: string, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve(socket.address().port);
    });
  });
}
