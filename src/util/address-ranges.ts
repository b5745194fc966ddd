/**
 * Lists of IP addresses and CIDR ranges as typed in the settings (`10.0.0.0/8`, `::1`), checked
 * once at start-up so that a typo is a config error rather than a proxy silently not trusted.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface AddressRanges {
  /** True when `address` (IPv4, IPv6, or IPv4-mapped IPv6) is in one of the ranges. */
  has(address: string): boolean;
}

/** Throws an Error naming the first entry that is not an address or a CIDR range. */
export function parseAddressRanges(entries: ReadonlyArray<string>): AddressRanges {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix, extra] = entry.trim().split('/') as [string, string | undefined, string | undefined];
    const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    const bits = prefix === undefined ? undefined : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
    if (!type || extra !== undefined || (bits !== undefined && !(bits >= 0 && bits <= (type === 'ipv4' ? 32 : 128)))) {
      throw new Error(`"${entry}" is not an IP address or a CIDR range — e.g. 127.0.0.1 or 10.0.0.0/8`);
    }
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return {
    has(address) {
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
      try {
        if (isIPv4(mapped)) return list.check(mapped, 'ipv4');
        if (isIPv6(mapped)) return list.check(mapped, 'ipv6');
      } catch {
        // An address BlockList cannot take (e.g. with a zone index) is in no range.
      }
      return false;
    },
  };
}
