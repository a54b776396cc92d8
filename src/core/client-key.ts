import { isIPv6 } from 'node:net';

/** The IPv6 prefix length a client's connections are counted under by default: one host may hold a whole /64. */
export const DEFAULT_IPV6_PREFIX = 64;

/** An address as written, without the ::ffff: an IPv4 peer of a dual-stack socket carries. */
export function plainAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail becomes the last two). */
export function ipv6Groups(address: string): number[] {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const group = (high: string | undefined, low: string | undefined): string => ((Number(high) << 8) | Number(low)).toString(16);
  const text = dotted ? `${address.slice(0, dotted.index)}${group(dotted[1], dotted[2])}:${group(dotted[3], dotted[4])}` : address;
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const headGroups = parse(head);
  const tailGroups = tail === undefined ? [] : parse(tail);
  return [...headGroups, ...Array<number>(8 - headGroups.length - tailGroups.length).fill(0), ...tailGroups];
}

/**
 * The key every per-client limit of every server mode counts under: an IPv4 address itself, an
 * IPv6 address by its first `ipv6Prefix` bits (one host may hold a whole /64 and take a fresh
 * address for every connection), '' for a Unix-domain peer.
 */
export function clientKey(address: string | undefined, ipv6Prefix = DEFAULT_IPV6_PREFIX): string {
  if (address === undefined || address === '') return '';
  const plain = plainAddress(address);
  if (!isIPv6(plain)) return plain;
  if (ipv6Prefix >= 128)
    return ipv6Groups(plain)
      .map((group) => group.toString(16))
      .join(':');
  const masked = ipv6Groups(plain).map((group, index) => {
    const bitsLeft = ipv6Prefix - index * 16;
    if (bitsLeft >= 16) return group;
    if (bitsLeft <= 0) return 0;
    return group & (0xffff << (16 - bitsLeft)) & 0xffff;
  });
  const kept = masked.slice(0, Math.ceil(ipv6Prefix / 16));
  return `${kept.map((group) => group.toString(16)).join(':')}::/${ipv6Prefix}`;
}
