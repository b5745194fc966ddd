// Run by a Node of another architecture (arm64 under qemu-aarch64, from native-fanout.test.ts):
// loads that architecture's prebuilt fan-out, protects the given packets (SRTP, and SRTCP both ways), and sends a 70-packet
// frame over loopback UDP to itself (70 small packets: more than one sendmmsg batch, and few
// enough bytes for the receiving socket's default buffer while qemu is slow to read it), to a dgram
// socket, to the addon's own receiver, and once more framed for a TURN channel (ChannelData). Plain JavaScript: no loader or compiler runs under qemu.
// usage: node native-check.mjs <binary> <vectors JSON>; prints one JSON line.
import { Buffer } from 'node:buffer';
import { createSocket } from 'node:dgram';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

const [binary, vectorsJson] = process.argv.slice(2);
const addon = { exports: {} };
process.dlopen(addon, binary);
const fanout = addon.exports;
const vectors = JSON.parse(vectorsJson);
const hex = (s) => Buffer.from(s, 'hex');
const protectedPackets = vectors.map((v) => {
  const stream = fanout.createStream(v.profile, hex(v.key), hex(v.salt), hex(v.auth), v.ssrc);
  return v.packets.map((p) => fanout.protect(stream, 96, p.marker, p.seq, p.ts, hex(p.payload), false).toString('hex'));
});

// SRTCP (srtcp.c): each vector's RTCP packets protected with indexes 0, 1, 2..., then opened again.
const srtcp = vectors.map((v) => {
  const context = fanout.createSrtcp(v.profile, hex(v.key), hex(v.salt), hex(v.auth));
  return v.rtcp.map((r, index) => {
    const rtcp = hex(r);
    const out = Buffer.alloc(rtcp.length + 20);
    const sealed = out.subarray(0, fanout.srtcpProtect(context, rtcp, index, out));
    const opened = Buffer.alloc(sealed.length);
    const length = fanout.srtcpUnprotect(context, sealed, opened);
    return { sealed: sealed.toString('hex'), opened: length < 0 ? length : opened.subarray(0, length).toString('hex') };
  });
});

const bound = (socket) => new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
const rx = createSocket('udp4');
const tx = createSocket('udp4');
const crx = createSocket('udp4');
await Promise.all([bound(rx), bound(tx), bound(crx)]);
let received = 0;
rx.on('message', () => received++);
// Datagrams on TURN channel 0x4007: the channel number, then the length of the SRTP packet after it.
let channelFramed = 0;
crx.on('message', (m) => {
  if (m.length >= 4 && m.readUInt16BE(0) === 0x4007 && m.readUInt16BE(2) === m.length - 4) channelFramed++;
});
// The same frame into the addon's own receiver (udp-receive.c): datagrams and bytes it hands over.
let nativeReceived = 0;
let nativeBytes = 0;
const nrx = fanout.openUdpReceiver('127.0.0.1', 0, 1 << 20, (_slab, _offset, lengths, count) => {
  nativeReceived += count;
  for (let i = 0; i < count; i++) nativeBytes += lengths[i];
});
fanout.setUdpReceiverSources(nrx, ['127.0.0.1']);
const stateSymbol = Object.getOwnPropertySymbols(tx).find((s) => s.description === 'state symbol');
const fd = tx[stateSymbol].handle.fd;
const v = vectors[0];
const stream = fanout.createStream(v.profile, hex(v.key), hex(v.salt), hex(v.auth), v.ssrc);
const payloads = Array.from({ length: 70 }, (_, i) => Buffer.alloc(200, i));
const frame = fanout.prepareFrame(payloads, new Uint8Array(70));
const figures = new Float64Array(3);
fanout.sendFrame(stream, fd, fanout.createDestination('127.0.0.1', rx.address().port), 96, 1, 1, frame, figures);
const result = { sent: figures[0], bytes: figures[1], errno: figures[2] };
fanout.sendFrame(stream, fd, fanout.createDestination('127.0.0.1', fanout.udpReceiverPort(nrx)), 96, 1, 71, frame, figures);
const nativeResult = { sent: figures[0] };
fanout.sendFrame(stream, fd, fanout.createDestination('127.0.0.1', crx.address().port, 0x4007), 96, 1, 141, frame, figures);
const channel = { sent: figures[0], bytes: figures[1], errno: figures[2] };
const deadline = Date.now() + 10_000;
while ((received < 70 || nativeReceived < nativeResult.sent || channelFramed < channel.sent) && Date.now() < deadline) await sleep(20);
fanout.closeUdpReceiver(nrx);
rx.close();
tx.close();
crx.close();
const armVersion = process.config.variables.arm_version;
process.stdout.write(`${JSON.stringify({ arch: process.arch, armVersion: armVersion === undefined ? null : String(armVersion), sourceHash: fanout.sourceHash, protected: protectedPackets, srtcp, hinted: fanout.hintMemoryReduction(), result, received, nativeReceived, nativeBytes, channel, channelFramed })}\n`);
