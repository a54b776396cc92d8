import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';

/**
 * Datagrams the kernel dropped for one socket, its receive buffer being full (sk_drops: the count
 * SO_RXQ_OVFL reports), from the last column of /proc/net/udp or udp6 of this network namespace.
 * null where the table cannot be read or has no socket bound to `address`:`port`.
 */
export function socketDrops(address: string, port: number): number | null {
  const ipv6 = isIPv6(address);
  let table: string;
  try {
    table = readFileSync(ipv6 ? '/proc/net/udp6' : '/proc/net/udp', 'utf8');
  } catch {
    return null;
  }
  const local = `${procAddress(address)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local) return Number(fields[fields.length - 1]);
  }
  return null;
}

/** An address as /proc/net/udp{,6} prints it: its bytes as 32-bit words in host (little-endian) order, in hex. */
function procAddress(address: string): string {
  const bytes = isIPv6(address) ? ipv6Bytes(address) : address.split('.').map(Number);
  const words: string[] = [];
  for (let i = 0; i < bytes.length; i += 4)
    words.push(
      bytes
        .slice(i, i + 4)
        .reverse()
        .map((byte) => byte.toString(16).toUpperCase().padStart(2, '0'))
        .join(''),
    );
  return words.join('');
}

function ipv6Bytes(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  return all.flatMap((group) => [group >> 8, group & 0xff]);
}

/** This network namespace's UDP buffer errors so far (/proc/net/snmp): datagrams dropped for a full receive or send buffer. */
export function udpBufferErrors(): { receive: number; send: number } | null {
  let snmp: string;
  try {
    snmp = readFileSync('/proc/net/snmp', 'utf8');
  } catch {
    return null;
  }
  const [names, values] = snmp.split('\n').filter((line) => line.startsWith('Udp:'));
  if (names === undefined || values === undefined) return null;
  const header = names.split(/\s+/);
  const numbers = values.split(/\s+/);
  const field = (name: string): number => Number(numbers[header.indexOf(name)]);
  const receive = field('RcvbufErrors');
  const send = field('SndbufErrors');
  return Number.isFinite(receive) && Number.isFinite(send) ? { receive, send } : null;
}
