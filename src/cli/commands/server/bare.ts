import { errorEntries, SocktuneError, type ErrorCounts } from '../../../core/errors.ts';
import { definedOnly } from '../../../core/validate.ts';
import { MAX_BUFFER_BUDGET } from '../../../transport/io/buffer-budget.ts';
import { SERVER_DEFAULTS as DEFAULTS, type ServerOptions } from '../../../transport/server/options.ts';
import type { SocktuneServer } from '../../../transport/server/socktune-server.ts';
import type { Command, Io, Values } from '../../command.ts';
import { str } from '../../client-settings.ts';
import { describeSize, parseSeconds } from '../../units.ts';
import { describeRate, ipv6Prefix, maxSendRate, type JsonLog } from './common.ts';
import { count, size } from './flag-values.ts';

/** Flags of the modes that serve a bare port (sockperf, a built-in service): no control channel, no tests. */
export const BARE_SERVER_FLAGS: Command['flags'] = {
  'io-model': {
    help: `loop, workers, thread-per-conn or io-uring (default ${DEFAULTS.ioModel}; io-uring: echo, discard, verify and source only)`,
    spec: { type: 'string' },
  },
  workers: { help: 'threads for --io-model workers or io-uring (default: CPUs)', spec: { type: 'string' } },
  blocking: { help: 'with thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
  'max-threads': { help: `the thread-per-conn pool (default ${DEFAULTS.maxThreads})`, spec: { type: 'string' } },
  'min-threads': {
    help: 'thread-per-conn threads started at listen and kept while idle (default: CPUs): clients then need not wait for a thread to start',
    spec: { type: 'string' },
  },
  'max-connections': { help: `connections open at once (default ${DEFAULTS.maxConnections})`, spec: { type: 'string' } },
  'max-per-ip': { help: `connections at once from one client address (default ${DEFAULTS.maxConnectionsPerIp})`, spec: { type: 'string' } },
  'idle-timeout': {
    help: `seconds a connection may stay quiet before it is closed (default ${DEFAULTS.idleTimeout / 1000}; 0: never)`,
    spec: { type: 'string' },
  },
  'max-buffered': {
    help: `memory partly received messages may hold, every connection together (default ${describeSize(DEFAULTS.maxBufferedBytes)})`,
    spec: { type: 'string' },
  },
};

/** Why the control server's flags mean nothing on a bare port: refused with the reason, never ignored. */
export function bareServerRefusals(protocol: string): Record<string, string> {
  const noTests = 'a bare port runs no tests to time: connections are bounded by --idle-timeout and --max-connections';
  return {
    'auth-token':
      `${protocol} has no authentication, so --auth-token could not protect it: bind a private ` +
      'address (--bind), let only known clients reach it (a firewall), and keep ' +
      '--max-connections/--max-per-ip low; or run the control server (socktune server) instead',
    'max-duration': noTests,
    'test-idle-timeout': noTests,
  };
}

/** A token in the environment means its owner expects authentication, which a bare port cannot give. */
export function refuseEnvironmentToken(protocol: string): void {
  if (!process.env.SOCKTUNE_AUTH_TOKEN) return;
  throw new SocktuneError(
    'SOCKTUNE_ERR_USAGE',
    `SOCKTUNE_AUTH_TOKEN is set, but ${protocol} has no authentication; unset it to serve without authentication`,
  );
}

/** The limits of a bare port, which faces strangers with no handshake. */
export function bareServerLimits(
  values: Values,
): Pick<
  ServerOptions,
  'maxConnections' | 'maxConnectionsPerIp' | 'ipv6Prefix' | 'idleTimeout' | 'maxSendRate' | 'maxBufferedBytes' | 'maxThreads' | 'minThreads'
> {
  const idleTimeout = str(values, 'idle-timeout');
  return definedOnly({
    maxThreads: count(values, 'max-threads', 65_536),
    minThreads: count(values, 'min-threads', 65_536, 0),
    maxConnections: count(values, 'max-connections', 10_000_000),
    maxConnectionsPerIp: count(values, 'max-per-ip', 10_000_000),
    ...ipv6Prefix(values),
    idleTimeout: idleTimeout === undefined ? undefined : Math.round(parseSeconds(idleTimeout, '--idle-timeout') * 1000),
    maxBufferedBytes: size(values, 'max-buffered', MAX_BUFFER_BUDGET),
    ...maxSendRate(values),
  });
}

export function modelDetail(server: SocktuneServer): string {
  const rate = server.options.maxSendRate;
  const blocking = server.options.blocking ? ', blocking' : '';
  return `; ${server.options.ioModel}${blocking}${rate === undefined ? '' : `; sends at most ${describeRate(rate)}`}`;
}

/** How often a serving server reports connections it turned away or closed on errors. */
const ERROR_REPORT_MS = 1000;

/** One line (or JSON event) per second in which connections were refused or closed on errors, with the counts by code. */
function reportErrors(server: SocktuneServer, io: Io, log: JsonLog): NodeJS.Timeout {
  let reported: ErrorCounts = {};
  return setInterval(() => {
    const { errors } = server.metrics();
    const grown = errorEntries(errors)
      .filter(([code, count]) => count > (reported[code] ?? 0))
      .map(([code, count]) => [code, count - (reported[code] ?? 0)] as const);
    reported = errors;
    if (grown.length === 0) return;
    if (log) log('errors', { errors: Object.fromEntries(grown) });
    else
      io.err(
        `${new Date().toISOString()} connections refused or closed on errors: ` +
          `${grown.map(([code, count]) => `${code} ×${count}`).join(', ')}`,
      );
  }, ERROR_REPORT_MS).unref();
}

/** Serves until stopped, then reports the counters: on stdout with --json, errors on stderr. */
export async function serveUntilStopped(server: SocktuneServer, io: Io, log: JsonLog, stopped: Promise<void>): Promise<number> {
  const reporter = reportErrors(server, io, log);
  await stopped;
  clearInterval(reporter);
  const metrics = server.metrics();
  const { destroyed } = await server.close();
  log?.('stopped', { metrics: { ...metrics, destroyedAtClose: destroyed } });
  const problems = errorEntries(metrics.errors);
  if (problems.length > 0) io.err(`connections closed on errors: ${problems.map(([code, count]) => `${code} ×${count}`).join(', ')}`);
  return 0;
}
