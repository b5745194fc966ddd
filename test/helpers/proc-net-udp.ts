/**
 * The IPv4 UDP sockets of this machine as the kernel lists them in /proc/net/udp, for tests: what
 * waits unread in each (counted as the kernel charges it, each datagram with its bookkeeping) and
 * what it dropped for want of room. One parser for the table's hexadecimal columns.
 */
import { readFileSync } from 'node:fs';

export interface ProcUdpSocket {
  /** The local address as the table writes it (little-endian hex: 0100007F is 127.0.0.1). */
  localAddressHex: string;
  port: number;
  /** Bytes in the receive queue (rx_queue). */
  queued: number;
  drops: number;
  inode: string;
}

export function readProcUdpSockets(): ProcUdpSocket[] {
  const sockets: ProcUdpSocket[] = [];
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 13) continue;
    const [localAddressHex, portHex] = fields[1]!.split(':');
    sockets.push({
      localAddressHex: localAddressHex!,
      port: Number.parseInt(portHex!, 16),
      queued: Number.parseInt(fields[4]!.split(':')[1]!, 16),
      drops: Number(fields[12]),
      inode: fields[9]!,
    });
  }
  return sockets;
}
