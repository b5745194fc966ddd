/**
 * The one NAL-unit RTP packetizer behind H.264 (RFC 6184, packetization-mode=1) and H.265
 * (RFC 7798, no DONL): done once per frame and shared by every viewer. Runs of small NAL units
 * (parameter sets, SEI, small slices) are aggregated (STAP-A / AP), a unit that fits alone goes as a
 * single NAL unit packet (zero-copy: the payload is the unit itself), and large ones are cut into
 * fragmentation units (FU-A / FU) of near-equal size so that no tiny trailing packet is sent. The
 * two codecs differ only in the layout of their NAL unit header (1 or 2 bytes) and in the packet
 * type numbers, which each declares as a `NalHeaderLayout`; every header written here (aggregate,
 * fragment) is derived from that layout.
 */
import type { PacketizedPayload } from './types.js';

/** Keeps SRTP + RTP header + extensions under a 1280-byte path MTU (what browsers assume for IPv6). */
export const DEFAULT_MAX_PAYLOAD = 1200;

/**
 * How an aggregation packet's header takes a field from its units: `'max'` the highest value (for
 * the one-bit F field that is the OR), `'min'` the lowest; `'type'` marks the NAL unit type field,
 * which aggregates and fragments replace with their own type.
 */
export type NalFieldRule = 'type' | 'max' | 'min';

/** A codec's NAL unit header, declared once; the packetizer derives every header it writes from it. */
export interface NalHeaderLayout {
  /** The header's fields from the most significant bit: width in bits and rule; 8 or 16 bits in all. */
  fields: ReadonlyArray<readonly [bits: number, rule: NalFieldRule]>;
  /** The NAL unit type an aggregation packet carries (STAP-A, AP). */
  aggregateType: number;
  /** The NAL unit type a fragmentation unit carries (FU-A, FU); also its name in the error. */
  fragment: readonly [type: number, name: string];
}

/**
 * Packetizes one access unit: at most `maxPayload` bytes a payload, `marker` on the last. `count`
 * tells how many payloads that makes without cutting (a Source numbers a frame's packets when it
 * makes the frame, and cuts them only once somebody reads them).
 */
export type NalPacketizer = ((units: ReadonlyArray<Buffer>, maxPayload?: number) => PacketizedPayload[]) & {
  count(units: ReadonlyArray<Buffer>, maxPayload?: number): number;
};

/** A field of the header as shift and mask, and how an aggregate combines it. */
interface Field {
  shift: number;
  mask: number;
  highest: boolean;
}

/** The layout worked out once into what the per-packet code needs. */
interface NalFormat {
  headerBytes: number;
  type: Field;
  /** Every field but the type, which an aggregate takes from its units. */
  combined: Field[];
  aggregateType: number;
  fragmentType: number;
  tooSmall: string;
}

function compile(layout: NalHeaderLayout): NalFormat {
  const bits = layout.fields.reduce((sum, [width]) => sum + width, 0);
  if (bits !== 8 && bits !== 16) throw new RangeError(`a NAL unit header has 8 or 16 bits, not ${bits}`);
  let shift = bits;
  let type: Field | undefined;
  const combined: Field[] = [];
  for (const [width, rule] of layout.fields) {
    shift -= width;
    const field = { shift, mask: (1 << width) - 1, highest: rule === 'max' };
    if (rule === 'type') type = field;
    else combined.push(field);
  }
  if (!type) throw new RangeError('a NAL unit header layout needs a type field');
  const [fragmentType, fragmentName] = layout.fragment;
  return {
    headerBytes: bits / 8,
    type,
    combined,
    aggregateType: layout.aggregateType,
    fragmentType,
    tooSmall: `maxPayload must leave room for an ${fragmentName} header`,
  };
}

/**
 * Writes the fragmentation unit's payload header for `nal` at `at` (the unit's own header with the
 * FU type in place of its type) and returns the unit's type, which the FU header carries.
 */
function writeFragmentHeader(format: NalFormat, nal: Buffer, arena: Buffer, at: number): number {
  const { headerBytes, type } = format;
  const header = nal.readUIntBE(0, headerBytes);
  arena.writeUIntBE((header & ~(type.mask << type.shift)) | (format.fragmentType << type.shift), at, headerBytes);
  return (header >> type.shift) & type.mask;
}

/**
 * Writes the aggregation packet's payload header at `at` for the units `from..to-1`: the aggregate
 * type, and each other field combined over the units long enough to hold a header (RFC 6184 5.7.1:
 * F is the OR, NRI the highest; RFC 7798 4.4.2: F is the OR, LayerId and TID the lowest).
 */
function writeAggregateHeader(format: NalFormat, units: ReadonlyArray<Buffer>, from: number, to: number, arena: Buffer, at: number): void {
  const { headerBytes } = format;
  let header = format.aggregateType << format.type.shift;
  for (const field of format.combined) {
    let value = field.highest ? 0 : field.mask;
    for (let j = from; j < to; j++) {
      const unit = units[j]!;
      if (unit.length < headerBytes) continue;
      const own = (unit.readUIntBE(0, headerBytes) >> field.shift) & field.mask;
      value = field.highest ? Math.max(value, own) : Math.min(value, own);
    }
    header |= value << field.shift;
  }
  arena.writeUIntBE(header, at, headerBytes);
}

/** The packetizer for a codec whose NAL unit header is `layout`. */
export function nalPacketizer(layout: NalHeaderLayout): NalPacketizer {
  const format = compile(layout);
  const packetize = (units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] => packetizeNal(units, maxPayload, format);
  const count = (units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): number => planNal(units, maxPayload, format).packets;
  return Object.assign(packetize, { count });
}

/**
 * How many consecutive units starting at `from` one aggregation packet takes, up to its last member,
 * or 1 when fewer than two units fit (no aggregation). Units too short to hold a NAL header are
 * skipped: they neither end the aggregate nor count as members, so [A, <short>] is a single NAL unit
 * packet, not an aggregate of one (RFC 7798 4.4.2 requires two or more; RFC 6184 STAP-A of one is waste).
 */
function aggregateCount(units: ReadonlyArray<Buffer>, from: number, maxPayload: number, headerBytes: number): number {
  let size = headerBytes;
  let members = 0;
  let span = 0;
  for (let j = from; j < units.length; j++) {
    const length = units[j]!.length;
    if (length < headerBytes) continue;
    if (size + 2 + length > maxPayload) break;
    size += 2 + length;
    members++;
    span = j - from + 1;
  }
  return members >= 2 ? span : 1;
}

/** What cutting an access unit will make: the payloads, and the bytes of the ones copied. */
interface NalPlan {
  packets: number;
  /** The one buffer all copied payloads (aggregates, fragments) share. */
  arenaBytes: number;
}

/**
 * Walks the units as `packetizeNal` cuts them, without cutting: the one place that decides how many
 * payloads a unit list makes, so the count a Source numbers packets by and the cut always agree.
 */
function planNal(units: ReadonlyArray<Buffer>, maxPayload: number, format: NalFormat): NalPlan {
  const h = format.headerBytes;
  const fuOverhead = h + 1;
  if (maxPayload < fuOverhead + 1) throw new RangeError(format.tooSmall);
  let arenaBytes = 0;
  let packets = 0;
  for (let i = 0; i < units.length;) {
    const length = units[i]!.length;
    if (length < h) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - h) / (maxPayload - fuOverhead));
      arenaBytes += length - h + fuOverhead * fragments;
      packets += fragments;
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload, h);
    if (count >= 2) {
      arenaBytes += h;
      for (let j = i; j < i + count; j++) if (units[j]!.length >= h) arenaBytes += 2 + units[j]!.length;
    }
    packets++;
    i += Math.max(count, 1);
  }
  return { packets, arenaBytes };
}

/**
 * Cuts one access unit into RTP payloads of at most `maxPayload` bytes; `marker` is set on the last
 * one. Units are NAL units without start codes; units shorter than a NAL header are dropped.
 */
function packetizeNal(units: ReadonlyArray<Buffer>, maxPayload: number, format: NalFormat): PacketizedPayload[] {
  const h = format.headerBytes;
  const fuOverhead = h + 1;
  const { arenaBytes } = planNal(units, maxPayload, format);
  const arena = arenaBytes > 0 ? Buffer.allocUnsafe(arenaBytes) : undefined;
  let at = 0;
  const packets: PacketizedPayload[] = [];
  for (let i = 0; i < units.length;) {
    const nal = units[i]!;
    const length = nal.length;
    if (length < h) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - h) / (maxPayload - fuOverhead));
      const base = Math.floor((length - h) / fragments);
      let extra = (length - h) % fragments;
      let offset = h;
      for (let f = 0; f < fragments; f++) {
        const chunk = base + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        const start = at;
        const type = writeFragmentHeader(format, nal, arena!, at);
        at += h;
        arena![at++] = (f === 0 ? 0x80 : 0) | (f === fragments - 1 ? 0x40 : 0) | type;
        at += nal.copy(arena!, at, offset, offset + chunk);
        offset += chunk;
        packets.push({ payload: arena!.subarray(start, at), marker: false });
      }
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload, h);
    if (count >= 2) {
      const start = at;
      // The aggregate's header is written once every member is known.
      writeAggregateHeader(format, units, i, i + count, arena!, start);
      at += h;
      for (let j = i; j < i + count; j++) {
        const unit = units[j]!;
        if (unit.length < h) continue;
        arena!.writeUInt16BE(unit.length, at);
        at += 2;
        at += unit.copy(arena!, at);
      }
      packets.push({ payload: arena!.subarray(start, at), marker: false });
      i += count;
      continue;
    }
    packets.push({ payload: nal, marker: false });
    i++;
  }
  if (packets.length > 0) packets[packets.length - 1]!.marker = true;
  return packets;
}
