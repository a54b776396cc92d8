import type { EventEmitter } from 'node:events';
import { RESULT_SCHEMA } from '../../../bench/results/result.ts';
import { parseCpuList, pinProcess } from '../../../core/affinity.ts';
import { DEFAULT_IPV6_PREFIX } from '../../../core/client-key.ts';
import { openFilesLimit, raiseOpenFilesLimit } from '../../../core/limits.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import type { ServerAddress } from '../../../transport/server/socktune-server.ts';
import type { Command, Io, Values } from '../../command.ts';
import { str } from '../../client-settings.ts';
import { LogLimiter, summaryWriter } from '../../log-limiter.ts';
import { parseBitRate, parseCount } from '../../units.ts';

/** The flags every server mode takes; `port` names the mode's own default port. */
export function commonServerFlags(defaultPort: number): Command['flags'] {
  return {
    port: { help: `port to listen on (default ${defaultPort}; 0 picks a free one)`, spec: { type: 'string', short: 'p' } },
    bind: { help: 'address to listen on (default 127.0.0.1)', spec: { type: 'string', short: 'B' } },
    'max-rate': {
      help:
        'cap what the whole server sends, every test and connection together, in bits/s like ' +
        'iperf3 -b (e.g. 100M, 1G): a public server is no free traffic cannon',
      spec: { type: 'string' },
    },
    affinity: {
      help: "pin the whole server (every thread) to these CPUs, e.g. 1 or 2-3; a client's -A N,M must stay within them",
      spec: { type: 'string', short: 'A' },
    },
    'ipv6-prefix': {
      help:
        'IPv6 clients share every per-client limit by this prefix length, since one host may hold ' +
        `a whole /64 (default ${DEFAULT_IPV6_PREFIX}; 128: per address)`,
      spec: { type: 'string' },
      value: '<bits>',
    },
    json: {
      help: 'print JSON lines on stdout: where it listens, what it serves, the counters when it stops',
      spec: { type: 'boolean' },
    },
  };
}

/** Raises the open-files limit as far as it goes and pins the process (-A): returns the limit, the most connections it can hold. */
export function prepareProcess(values: Values): number {
  const openFiles = raiseOpenFilesLimit(openFilesLimit().hard).soft;
  const cpus = str(values, 'affinity');
  if (cpus !== undefined) pinProcess(parseCpuList(cpus, '-A'));
  return openFiles;
}

/** --ipv6-prefix, for every mode's per-client limits. */
export function ipv6Prefix(values: Values): { ipv6Prefix?: number } {
  const bits = str(values, 'ipv6-prefix');
  return bits === undefined ? {} : { ipv6Prefix: parseCount(bits, '--ipv6-prefix', 1, 128) };
}

/** Writes one JSON line per server event on stdout (--json), or nothing. */
export type JsonLog = ((event: string, fields: Record<string, unknown>) => void) | undefined;

export function jsonLog(values: Values, io: Io): JsonLog {
  if (values.json !== true) return undefined;
  return (event, fields) =>
    io.out(JSON.stringify({ schema: RESULT_SCHEMA, command: 'server', event, time: new Date().toISOString(), ...fields }));
}

/** Log lines clients cause, limited per client (LogLimiter): the summary goes where the lines go, or to --json as 'suppressed'. */
export function clientLogLimiter(io: Io, log: JsonLog): LogLimiter {
  return new LogLimiter(summaryWriter(io.err, log && ((fields) => log('suppressed', fields))));
}

/** Where it listens, and the open-files limit it raised itself to: the most connections it can hold. */
export function announce(
  io: Io,
  log: JsonLog,
  what: string,
  address: ServerAddress,
  openFiles: number,
  detail = '',
  extra: Record<string, unknown> = {},
): void {
  if (log) log('listening', { address, openFiles, ...extra });
  else io.out(`${what} listening on ${describeAddress(address)} (open files: ${openFiles}${detail})`);
}

/** --max-rate (bits/s, like iperf3 -b) as the bytes per second the library's maxSendRate takes. */
export function maxSendRate(values: Values): { maxSendRate?: number } {
  const rate = str(values, 'max-rate');
  return rate === undefined ? {} : { maxSendRate: Math.max(1, Math.round(parseBitRate(rate, '--max-rate') / 8)) };
}

export function describeRate(rate: number | SendBudget): string {
  const bytesPerSecond = typeof rate === 'number' ? rate : rate.bytesPerSecond;
  return `${(bytesPerSecond * 8) / 1e6} Mbit/s`;
}

export function listenPort(values: Values, fallback: number): { host: string; port: number } {
  const port = str(values, 'port');
  return { host: str(values, 'bind') ?? '127.0.0.1', port: port === undefined ? fallback : parseCount(port, '--port', 0, 65535) };
}

function describeAddress(address: ServerAddress): string {
  if (address.family === 'unix') return address.path;
  return `${address.family === 'ipv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/** The signals that end a server cleanly (its Unix socket file removed): SIGHUP too, a closed terminal or a service manager's reload. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Resolves on Ctrl-C, SIGTERM or SIGHUP, or when `server` says it is done (a one-off server). */
export function untilStopped(server?: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      for (const signal of STOP_SIGNALS) process.off(signal, stop);
      server?.off('done', stop);
      resolve();
    };
    for (const signal of STOP_SIGNALS) process.on(signal, stop);
    server?.once('done', stop);
  });
}
