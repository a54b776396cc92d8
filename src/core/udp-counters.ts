import { readFileSync } from 'node:fs';

/**
 * Datagrams the kernel dropped for one socket, its receive buffer being full (sk_drops: the count
 * SO_RXQ_OVFL reports), from the last column of /proc/net/udp or udp6 of this network namespace.
 * null where the table cannot be read or has no socket bound to `localPort`.
 */
export function socketDrops(localPort: number, family: 'IPv4' | 'IPv6'): number | null {
  let table: string;
  try {
    table = readFileSync(family === 'IPv4' ? '/proc/net/udp' : '/proc/net/udp6', 'utf8');
  } catch {
    return null;
  }
  const port = localPort.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(`:${port}`)) return Number(fields[fields.length - 1]);
  }
  return null;
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
