/** Human-readable units for tables and the HTML report. */

/** Divides by `base` until the value fits the unit; whole numbers stay exact in the first unit. */
function scaled(value: number, base: number, units: readonly string[]): string {
  let unit = 0;
  let scaledValue = value;
  while (Math.abs(scaledValue) >= base && unit < units.length - 1) {
    scaledValue /= base;
    unit++;
  }
  if (unit === 0 && Number.isInteger(value)) return `${value} ${units[0]}`;
  return `${scaledValue.toFixed(Math.abs(scaledValue) >= 100 ? 0 : 2)} ${units[unit]}`;
}

export function formatBits(bitsPerSecond: number): string {
  return scaled(bitsPerSecond, 1000, ['bit/s', 'Kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s']);
}

/** iperf3 -f: a rate in one unit, k m g t for Kbit/s to Tbit/s, K M G T for KiB/s to TiB/s. */
export type RateFormat = 'k' | 'm' | 'g' | 't' | 'K' | 'M' | 'G' | 'T';
export const RATE_FORMATS: readonly RateFormat[] = ['k', 'm', 'g', 't', 'K', 'M', 'G', 'T'];

/** A rate in the unit `format` names, else in the unit that fits it. */
export function formatRate(bitsPerSecond: number, format?: RateFormat): string {
  if (format === undefined) return formatBits(bitsPerSecond);
  const power = 'kmgt'.indexOf(format.toLowerCase()) + 1;
  const inBytes = format === format.toUpperCase();
  const value = inBytes ? bitsPerSecond / 8 / 1024 ** power : bitsPerSecond / 1000 ** power;
  const unit = inBytes ? `${['', 'Ki', 'Mi', 'Gi', 'Ti'][power]}B/s` : `${['', 'K', 'M', 'G', 'T'][power]}bit/s`;
  return `${value.toFixed(value >= 100 ? 0 : 2)} ${unit}`;
}

export function formatBytes(bytes: number): string {
  return scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
}

/** A latency in a unit a person reads at a glance; 'n/a' where nothing was measured. */
export function formatMicros(us: number | null): string {
  if (us === null) return 'n/a';
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  return `${us.toFixed(us >= 100 ? 0 : 1)} µs`;
}

export function formatCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)} k`;
  return String(Math.round(value));
}

/** A size as the size flags read it back: 4M, 256K, or a plain byte count. */
export function formatSizeFlag(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}M`;
  if (bytes % 1024 === 0) return `${bytes / 1024}K`;
  return String(bytes);
}
