import { SocktuneError } from '../core/errors.ts';
import { formatSizeFlag } from '../bench/results/format.ts';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** "64K", "1MiB", "4096" → bytes (binary units, as iperf3 reads -l and -w), at most `max`. */
export function parseSize(text: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.round(Number(match[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes a size like 64K or 1M, got ${JSON.stringify(text)}`);
  }
  if (bytes > max) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes at most ${describeSize(max)}, got ${JSON.stringify(text)}`);
  return bytes;
}

/** "100M", "1G", "500k", "2.5g" → bits per second (decimal units, as iperf3 reads -b). */
export function parseBitRate(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:bit\/s|bps)?$/i.exec(text.trim());
  const factor = match ? { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 }[match[2]!.toLowerCase()] : undefined;
  const bits = match && factor !== undefined ? Number(match[1]) * factor : Number.NaN;
  if (!Number.isFinite(bits) || bits < 8)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes a rate in bits/s like 100M or 1G, got ${JSON.stringify(text)}`);
  return bits;
}

/** "10", "1.5s", "2m", "500ms" → seconds. */
export function parseSeconds(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim());
  if (!match)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes a duration like 10, 1.5s, 2m or 500ms, got ${JSON.stringify(text)}`);
  const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] ?? 's']!;
  return Number(match[1]) * factor;
}

export function parseCount(text: string, flag: string, min = 1, max = 1_000_000): number {
  // Decimal digits only: Number() would also read 0x10, 1e3 and ' 7 '.
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** The largest request, response or write a client sends in one piece: it is held in memory whole. */
export const MAX_REQUEST_BYTES = 64 * 1024 * 1024;
/** SO_SNDBUF / SO_RCVBUF are C ints. */
export const MAX_SOCKET_BUFFER = 2 ** 31 - 1;

/** A size as the flags take it: 16M, 64K, or bytes. */
export function describeSize(bytes: number): string {
  return bytes > 0 && bytes % 1024 === 0 ? formatSizeFlag(bytes) : `${bytes} bytes`;
}

/** A clock offset in ms with its sign, to a tenth: `+0.8`, `-800.0`, and `0.0` for what rounds to nothing. */
export function formatSignedMs(ms: number): string {
  const tenths = Math.round(ms * 10);
  return tenths === 0 ? '0.0' : `${tenths > 0 ? '+' : '-'}${(Math.abs(tenths) / 10).toFixed(1)}`;
}
