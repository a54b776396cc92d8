import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { ipv6Groups } from './client-key.ts';

/** A UDP socket as the kernel's tables know it: its local address and port, and its peer's when it is connected. */
export interface UdpEndpoint {
  address: string;
  port: number;
  /** For a connected socket that shares its local port with others (iperf3's server binds every stream to its one port). */
  remote?: { address: string; port: number } | undefined;
}

/**
 * Datagrams the kernel dropped for these sockets together, their receive buffers being full
 * (sk_drops: the count SO_RXQ_OVFL reports), from the last column of /proc/net/udp or udp6 of this
 * network namespace, each table read once. null where a table cannot be read or has no such socket.
 */
export function socketDrops(sockets: readonly UdpEndpoint[]): number | null {
  const tables = new Map<string, Map<string, number> | null>();
  let total = 0;
  for (const { address, port, remote } of sockets) {
    const path = isIPv6(address) ? '/proc/net/udp6' : '/proc/net/udp';
    if (!tables.has(path)) tables.set(path, dropsByAddress(path));
    const local = procEndpoint(address, port);
    const drops = tables.get(path)?.get(remote === undefined ? local : `${local} ${procEndpoint(remote.address, remote.port)}`);
    if (drops === undefined) return null;
    total += drops;
  }
  return total;
}

/**
 * Drops by local address as the table writes it ("0100007F:1F90"): of the unconnected sockets bound
 * there together, else of the socket there; and each socket's by local and remote addresses together.
 */
function dropsByAddress(path: string): Map<string, number> | null {
  let table: string;
  try {
    table = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const drops = new Map<string, number>();
  // Unconnected sockets on one local address are a SO_REUSEPORT group: their drops add up.
  const groups = new Map<string, number>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length <= 2) continue;
    const count = Number(fields[fields.length - 1]);
    if (/^0+:0+$/.test(fields[2]!)) groups.set(fields[1]!, (groups.get(fields[1]!) ?? 0) + count);
    drops.set(fields[1]!, count);
    drops.set(`${fields[1]!} ${fields[2]!}`, count);
  }
  for (const [local, count] of groups) drops.set(local, count);
  return drops;
}

function procEndpoint(address: string, port: number): string {
  return `${procAddress(address)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** An address as /proc/net/udp{,6} prints it: its bytes as 32-bit words in host (little-endian) order, in hex. */
function procAddress(address: string): string {
  const bytes = isIPv6(address) ? ipv6Groups(address).flatMap((group) => [group >> 8, group & 0xff]) : address.split('.').map(Number);
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

/**
 * The receiving side's drop counters over a test: `sockets`' own and the host's UdpRcvbufErrors,
 * read now; the function returned gives their growth since (null where a reading is unknown).
 */
export function countDropsFrom(sockets: readonly UdpEndpoint[]): () => {
  socket: number | null;
  host: number | null;
} {
  const since = (before: number | null, now: number | null): number | null => (before === null || now === null ? null : now - before);
  const socketBefore = socketDrops(sockets);
  const hostBefore = udpBufferErrors()?.receive ?? null;
  return () => ({ socket: since(socketBefore, socketDrops(sockets)), host: since(hostBefore, udpBufferErrors()?.receive ?? null) });
}
