/**
 * Letting werift go once a viewer has settled.
 *
 * After DTLS, a viewer on a UDP pair needs werift for nothing: its media leave through our SRTP
 * writers (packet-transport.ts), its RTCP is read in project code (viewer-rtcp.ts), and its STUN
 * consent checks are answered in project code (consent-responder.ts). What werift still held was
 * its whole peer connection: ICE agent, DTLS state with the handshake's buffers, SRTP/SRTCP
 * sessions, transceivers and about 70 event objects of ten closures each. That was most of what a
 * watching viewer cost in memory (about 270 KiB of heap, `npm run bench:webrtc`).
 *
 * So once the viewer's first authentic RTCP arrives (its DTLS is complete on its side too, and no
 * handshake retransmission can follow), the pair's UDP socket is taken over here and werift's peer
 * connection is closed without it:
 * - werift's STUN protocol gets an inert stand-in for its transport, so werift's close and its
 *   timers send nothing and close nothing of ours;
 * - the socket's datagrams come here (werift's `UdpTransport.onData`, the one property its socket
 *   listener reads):
 *   - STUN Binding requests (first byte 0 or 1, RFC 7983) go to the frozen consent responder, which
 *     answers the ones with the viewer's credentials from any address,
 *   - RTP/RTCP (128-191) to the viewer's RTCP reader,
 *   - DTLS records (20-63) from the pair's address: an authentic alert means the viewer closed its
 *     connection (dtls-alert.ts); anything else is dropped and counted.
 * - The viewer's address can change under it: a home router or a mobile network's NAT drops an
 *   idle or long-lived mapping and gives the next packet a new source port (or address), with
 *   nothing said to either end. The viewer's authentic SRTCP (its keys are its alone, and SRTCP's
 *   replay window refuses a copy) from a new address starts a consent check of ours there (RFC
 *   7675); the viewer's signed answer from that address moves its media there, counted
 *   (`pathChanges`): within a receiver report and a round trip of the change. Its Binding requests
 *   from another address are answered but move nothing: a browser also checks its backup paths.
 *   The check is what keeps a viewer from pointing its stream at an address it can only forge as a
 *   source (an amplifier for a flood): nobody there answers. Anything else from an unknown address
 *   is dropped and counted (`foreign`).
 *
 * What changes for the viewer: nothing it can see. What is given up, knowingly: an ICE restart
 * (new credentials, a new negotiation) is not followed: the viewer fails on its side and the page
 * reconnects (WHEP already refused ICE restarts). Our own RFC 7675 consent checks of the viewer
 * end with werift; the viewer's authenticated SRTCP is the proof of consent instead: without it for
 * `silenceTimeoutMs` (10 s, a third of RFC 7675's 30 s) the viewer is released. A viewer relayed by
 * a TURN server over UDP is settled by viewer-settle-turn.ts; viewers on a TCP pair (or TURN over
 * TCP), and viewers that talk (their microphone is werift's SRTP receiver), keep werift.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import type { RTCDtlsTransport } from 'werift';
import type { NativeFanoutStatus } from '../rtp/native-fanout.js';
import type { ConsentResponder } from './consent-responder.js';
import { dtlsAlertReaderFromWerift, type DtlsAlertReader } from './dtls-alert.js';
import { udpPacketTransport, weriftUdpTransport, type PacketTransport } from './packet-transport.js';
import type { RtcpReading } from './viewer-rtcp.js';

export interface SettledPathHandlers {
  /** One datagram that looks like RTP/RTCP: the viewer's authentic RTCP, refused RTCP, or neither. */
  readRtcp(data: Buffer): RtcpReading;
  /** An authentic DTLS alert: the viewer closed its connection. */
  onAlert(): void;
  /** The viewer's media now go to this address (its authentic RTCP came from there). */
  onPathChange?(address: Readonly<[string, number]>): void;
}

export interface SettledPathCounters {
  /** Datagrams from an address other than the viewer's that were none of the above (dropped). */
  foreign: number;
  /** Datagrams from the viewer that were none of the above (dropped). */
  dropped: number;
  /** Times the viewer's media followed it to a new address. */
  pathChanges: number;
}

export interface SettledPath {
  readonly transport: PacketTransport;
  readonly counters: SettledPathCounters;
  /** Whether the viewer's DTLS alerts can be authenticated (the suite is one dtls-alert.ts knows). */
  readonly readsAlerts: boolean;
  /** Closes the socket; nothing is read or sent any more. */
  close(): void;
}

/**
 * How a settled path reads one kind of datagram: true when it was the viewer's and taken. Made once
 * per path: a datagram then costs no closures (they were made per datagram, about 1.5 KiB/s of
 * garbage per watching viewer).
 */
export interface SettledReaders {
  /** STUN (first byte 0-3, RFC 7983): the viewer's Binding requests, and answers to our checks. */
  stun(data: Buffer, addr: [string, number], fromViewer: boolean): boolean;
  /** RTP/RTCP (128-191): the viewer's RTCP. */
  rtcp(data: Buffer, addr: [string, number], fromViewer: boolean): boolean;
}

/**
 * The handler of a settled viewer's datagrams, told apart by their first byte as RFC 7983 does:
 * STUN and RTCP to `read`, DTLS (20-63) from the viewer's address (`viewer()`, where its media go
 * now) to `alerts`, its authentic alert to `onAlert`. One that nothing took is counted, as dropped
 * (from the viewer's address) or foreign.
 */
export function settledDatagramHandler(
  viewer: () => Readonly<[string, number]>,
  read: SettledReaders,
  counters: SettledPathCounters,
  alerts: DtlsAlertReader | undefined,
  onAlert: () => void,
): (data: Buffer, addr: [string, number]) => void {
  return (data, addr) => {
    const at = viewer();
    const fromViewer = addr[0] === at[0] && addr[1] === at[1];
    const first = data[0] ?? 255;
    let taken = false;
    if (first <= 3) taken = read.stun(data, addr, fromViewer);
    else if (first >= 128 && first <= 191) taken = read.rtcp(data, addr, fromViewer);
    else if (fromViewer && first >= 20 && first <= 63 && alerts?.isAuthenticAlert(data)) {
      taken = true;
      onAlert();
    }
    if (taken) return;
    if (fromViewer) counters.dropped++;
    else counters.foreign++;
  };
}

/** A settled path whose `close` releases what it holds once, however often it is called. */
export function settledPath(transport: PacketTransport, counters: SettledPathCounters, alerts: DtlsAlertReader | undefined, release: () => void): SettledPath {
  let open = true;
  return {
    transport,
    counters,
    readsAlerts: alerts !== undefined,
    close: () => {
      if (!open) return;
      open = false;
      release();
    },
  };
}

/** What werift's STUN protocol gets in place of the pair's transport: it sends and closes nothing. */
function inertTransport(socket: UdpSocket): object {
  return {
    type: 'udp',
    closed: true,
    send: async (): Promise<void> => undefined,
    close: async (): Promise<void> => undefined,
    get address() {
      return socket.address();
    },
  };
}

/**
 * Takes the viewer's UDP pair over from werift. Undefined (and nothing changed) when the pair is
 * not a plain UDP one or its socket is gone: the viewer then stays with werift. The caller closes
 * werift's peer connection afterwards.
 */
export function settleUdpPath(dtls: RTCDtlsTransport, consent: ConsentResponder, native: NativeFanoutStatus, handlers: SettledPathHandlers): SettledPath | undefined {
  const connection = dtls.iceTransport.connection;
  const pair = connection.nominated;
  const protocol: unknown = pair?.protocol;
  const udp = pair ? weriftUdpTransport(protocol) : undefined;
  if (!pair || !udp || typeof protocol !== 'object' || protocol === null) return undefined;
  const socket = udp.socket;
  let remote: Readonly<[string, number]> = [pair.remoteAddr[0], pair.remoteAddr[1]];
  if (isIP(remote[0]) === 0) return undefined;
  try {
    socket.address(); // throws once the socket is closed
  } catch {
    return undefined;
  }
  // Nothing of werift's in it: not the pair (its protocol's events lead back to the connection).
  const transport = udpPacketTransport(socket, remote[0], remote[1], native, undefined);
  if (!consent.freeze()) return undefined;
  const alerts = dtlsAlertReaderFromWerift(dtls);
  const counters: SettledPathCounters = { foreign: 0, dropped: 0, pathChanges: 0 };
  (protocol as { transport: unknown }).transport = inertTransport(socket);
  udp.onData = settledDatagramHandler(
    () => remote,
    {
      stun: (data, addr, fromViewer) => {
        // A Binding request with the viewer's credentials is answered wherever it comes from; it
        // moves nothing (a browser also checks its backup paths), the viewer's RTCP does (below).
        if (consent.answerSettled(data, addr, socket)) return true;
        if (!consent.readConsent(data, addr)) return false;
        // It answered at that address: its media go there from now on.
        if (!fromViewer && transport.retarget?.(addr[0], addr[1])) {
          remote = [addr[0], addr[1]];
          counters.pathChanges++;
          handlers.onPathChange?.(remote);
        }
        return true;
      },
      rtcp: (data, addr, fromViewer) => {
        const reading = handlers.readRtcp(data);
        // The viewer's media path moved here (it sends its reports where it takes its media): ask
        // it here whether it wants the media.
        if (reading === 'authentic' && !fromViewer) consent.checkConsent(addr, socket);
        return reading !== 'other';
      },
    },
    counters,
    alerts,
    handlers.onAlert,
  );
  return settledPath(transport, counters, alerts, () => {
    udp.onData = () => undefined;
    try {
      socket.close();
    } catch {
      // Already closed.
    }
  });
}
