/**
 * Letting werift go once a viewer relayed by a TURN server (over UDP) has settled: the same as
 * viewer-settle.ts does for a direct UDP pair, for a relay pair.
 *
 * werift's TURN client (its `TurnProtocol`: the allocation, its refresh timer, its socket to the
 * TURN server and the channel bound to the viewer) is kept; everything else of werift's goes. The
 * ICE pair's wrapper around that client (`StunOverTurnProtocol`, which werift's close would close
 * the allocation through) gets an inert stand-in for it first. Then:
 * - the viewer's media leave on the channel (packet-transport.ts, `turnChannelPacketTransport`),
 *   which is refreshed through the kept client; if a refresh fails, the viewer is released (the page
 *   reconnects), as nothing of werift's is left to bind a new one;
 * - what the TURN server relays from the viewer comes here, by the client's own event:
 *   - the viewer's STUN Binding requests (its keepalives and consent checks) are answered by the
 *     frozen consent responder, on the channel of the address they came from: a viewer may check
 *     from another of its candidates than the one its media go to (werift's ICE checks bound a
 *     channel to each), and must be answered there; from an address with no channel, nothing,
 *   - RTP/RTCP (128-191) to the viewer's RTCP reader, from whichever of its addresses (its SRTCP
 *     is the proof it is the viewer's),
 *   - an authentic DTLS alert (dtls-alert.ts) from the viewer's address means it closed its
 *     connection.
 *   Anything else is dropped and counted. The media stay on the channel they started on: the TURN
 *   server relays only from addresses werift gave a permission, and a viewer that moved to a new
 *   one (a new NAT port) is let go by its silence, then reconnected by the page.
 * - closing closes the client: its refresh timer stops and its socket closes; the server lets the
 *   allocation expire.
 */
import type { RTCDtlsTransport } from 'werift';
import type { NativeFanoutStatus } from '../rtp/native-fanout.js';
import type { ConsentResponder, DatagramSender } from './consent-responder.js';
import { dtlsAlertReaderFromWerift } from './dtls-alert.js';
import { boundChannelNumber, channelDataSender, isWeriftTurnClient, turnChannelPacketTransport, weriftTurnChannel, type PacketTransport, type WeriftTurnClient } from './packet-transport.js';
import { settledDatagramHandler, settledPath, type SettledPath, type SettledPathCounters, type SettledPathHandlers } from './viewer-settle.js';

export interface SettledTurnHandlers extends SettledPathHandlers {
  /** The channel could not be refreshed: the viewer's media have no way left. */
  onChannelLost(): void;
}

/** What else of werift's TURN client is used here, to keep it alone (structural, as in packet-transport.ts). */
interface KeptTurnClient extends WeriftTurnClient {
  onData: { subscribe(execute: (data: Buffer, addr: [string, number]) => void): { unSubscribe(): void } };
  close(): Promise<void>;
  /** STUN transactions under way, by id: the allocation's own, and the ICE checks sent through it. */
  transactions: Record<string, unknown>;
}

function isKeptTurnClient(value: unknown): value is KeptTurnClient {
  if (!isWeriftTurnClient(value)) return false;
  const { onData, close, transactions } = value as Partial<Record<keyof KeptTurnClient, unknown>>;
  return (
    typeof close === 'function' &&
    typeof onData === 'object' &&
    onData !== null &&
    typeof (onData as { subscribe?: unknown }).subscribe === 'function' &&
    typeof transactions === 'object' &&
    transactions !== null
  );
}

/** What werift's `StunOverTurnProtocol` gets in place of the TURN client: it closes and sends nothing. */
function inertTurnClient(): object {
  return {
    transactions: {},
    sendData: async (): Promise<void> => undefined,
    close: async (): Promise<void> => undefined,
  };
}

/**
 * werift's ICE checks of the viewer (its consent checks) that are under way went through the TURN
 * client and wait in its transactions, each holding the ICE pair's protocol and through it werift's
 * whole peer connection, for up to 40 s of retransmissions. They are werift's, and werift is going:
 * they are cancelled and forgotten. The allocation's own (refresh, channel binds) stay.
 */
function forgetIceTransactions(turn: KeptTurnClient, iceProtocol: object): void {
  for (const [id, transaction] of Object.entries(turn.transactions)) {
    if (typeof transaction !== 'object' || transaction === null || (transaction as { protocol?: unknown }).protocol !== iceProtocol) continue;
    const cancel: unknown = (transaction as { cancel?: unknown }).cancel;
    if (typeof cancel === 'function') cancel.call(transaction);
    delete turn.transactions[id];
  }
}

/**
 * Takes a relay pair over from werift. Undefined (and nothing changed) for any other pair, a TURN
 * pair without a channel, or one whose socket is gone: the viewer then keeps werift. The caller
 * closes werift's peer connection afterwards.
 */
export function settleTurnPath(dtls: RTCDtlsTransport, consent: ConsentResponder, native: NativeFanoutStatus, handlers: SettledTurnHandlers): SettledPath | undefined {
  const pair = dtls.iceTransport.connection.nominated;
  const protocol: unknown = pair?.protocol;
  if (!pair || typeof protocol !== 'object' || protocol === null || !('turn' in protocol)) return undefined;
  const turn: unknown = protocol.turn;
  const remote: [string, number] = [pair.remoteAddr[0], pair.remoteAddr[1]];
  const channel = weriftTurnChannel(protocol, remote);
  if (!channel || !isKeptTurnClient(turn)) return undefined;
  try {
    channel.socket.address(); // throws once the socket is closed
  } catch {
    return undefined;
  }
  let lost = false;
  const channelLost: PacketTransport = {
    kind: 'generic',
    pair: undefined,
    nativeTarget: () => undefined,
    send: () => {
      if (lost) return;
      lost = true;
      handlers.onChannelLost();
    },
    queuedBytes: () => 0,
  };
  const transport = turnChannelPacketTransport(channel, native, channelLost);
  if (!consent.freeze()) return undefined;
  // The consent responder's answers go back on the channel they came by.
  const onChannelOf = (addr: [string, number]): DatagramSender | undefined => {
    const number = boundChannelNumber(turn, addr);
    if (number === undefined) return undefined;
    const send = channelDataSender(channel.socket, channel.server, number);
    return { send: (message) => send([message]) };
  };
  const alerts = dtlsAlertReaderFromWerift(dtls);
  const counters: SettledPathCounters = { foreign: 0, dropped: 0, pathChanges: 0 };
  (protocol as { turn: unknown }).turn = inertTurnClient();
  forgetIceTransactions(turn, protocol);
  const subscription = turn.onData.subscribe(
    settledDatagramHandler(
      () => remote,
      {
        stun: (data, addr) => {
          const back = onChannelOf(addr);
          return back !== undefined && consent.answerSettled(data, addr, back);
        },
        rtcp: (data) => handlers.readRtcp(data) !== 'other',
      },
      counters,
      alerts,
      handlers.onAlert,
    ),
  );
  return settledPath(transport, counters, alerts, () => {
    subscription.unSubscribe();
    turn.close().catch(() => undefined);
  });
}
