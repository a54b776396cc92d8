import { BenchServer, type TestLog } from '../../bench/bench-server.ts';
import { RESULT_SCHEMA } from '../../bench/result.ts';
import { BUILTIN_SERVICES, type BuiltinService } from '../../transport/server-options.ts';
import { createServer, type SocktuneServer } from '../../transport/server.ts';
import { createSockperfServer, SOCKPERF_DEFAULT_PORT } from '../../protocols/sockperf/server.ts';
import { IPERF3_DEFAULT_PORT, Iperf3Server, type Iperf3TestLog } from '../../protocols/iperf3/server.ts';
import { SocktuneError } from '../../core/errors.ts';
import type { EventEmitter } from 'node:events';
import type { ServerAddress } from '../../transport/server.ts';
import type { Command, Io, Values } from '../command.ts';
import { authToken, DEFAULT_CONTROL_PORT, serverSettings, str } from '../client-settings.ts';
import { parseBitRate, parseCount, parseSeconds } from '../units.ts';

export const serverCommand: Command = {
  name: 'server',
  summary: 'serve stream, rr and tune tests to socktune clients (several at once)',
  usage: 'socktune server [-p 5210] [--bind ADDR | --unix PATH] [--one-off] [--max-tests N] [--iperf3 | --sockperf | --service NAME] [--json]',
  flags: {
    port: { help: `control port (default ${DEFAULT_CONTROL_PORT}; 0 picks a free one)`, spec: { type: 'string', short: 'p' } },
    bind: { help: 'address to listen on (default 127.0.0.1)', spec: { type: 'string', short: 'B' } },
    unix: { help: 'listen on a Unix-domain socket path instead', spec: { type: 'string' } },
    'one-off': { help: 'exit after one test', spec: { type: 'boolean', short: '1' } },
    'max-tests': { help: 'tests at once before new clients are refused (default 16)', spec: { type: 'string' } },
    'max-per-client': { help: 'control connections at once from one client address (default 8)', spec: { type: 'string' } },
    'max-duration': { help: 'longest a test may last in seconds, the client\'s grace included (a 10 s stream asks for 20 s) (default 600)', spec: { type: 'string' } },
    'max-rate': { help: 'cap what each reverse/bidir test (with --service source: the whole server) may send, in bits/s like iperf3 -b (e.g. 100M, 1G): a public server is no free traffic cannon', spec: { type: 'string' } },
    'auth-token': { help: 'require clients to prove this shared secret (HMAC-SHA256 challenge) before any test; better: SOCKTUNE_AUTH_TOKEN, which stays out of ps', spec: { type: 'string' } },
    iperf3: { help: `answer stock iperf3 clients (TCP: -R, --bidir, -P, -n, -k, -l, -w, -N, -O, -J, --get-server-output) instead, on port ${IPERF3_DEFAULT_PORT} unless -p; several tests at once`, spec: { type: 'boolean' } },
    sockperf: { help: `answer stock sockperf clients (pp, ul, tp) instead, on port ${SOCKPERF_DEFAULT_PORT} unless -p`, spec: { type: 'boolean' } },
    service: { help: `serve one built-in service on the port itself, no control channel (${BUILTIN_SERVICES.join(', ')}): a backend for L4 balancers and --raw clients`, spec: { type: 'string' } },
    'io-model': { help: '--sockperf, --service: loop, workers or thread-per-conn (default loop)', spec: { type: 'string' } },
    workers: { help: '--sockperf, --service: threads for --io-model workers (default: CPUs)', spec: { type: 'string' } },
    blocking: { help: '--sockperf, --service with thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
    'max-connections': { help: '--service: connections open at once before newcomers are closed (default 10000)', spec: { type: 'string' } },
    'max-per-ip': { help: '--service: connections at once from one client address (default 1024)', spec: { type: 'string' } },
    'idle-timeout': { help: '--service: seconds a connection may stay quiet before it is closed (default 300; 0: never)', spec: { type: 'string' } },
    window: { help: '--service: SO_SNDBUF and SO_RCVBUF of the served sockets, e.g. 256K', spec: { type: 'string', short: 'w' } },
    json: { help: 'print JSON lines on stdout: where it listens, each test that ends, the counters when it stops', spec: { type: 'boolean' } },
  },
  examples: [
    'socktune server',
    'socktune server -p 6000 --bind 0.0.0.0',
    'socktune server --one-off -p 0',
    'socktune server --iperf3 --max-tests 8    # then: iperf3 -c 127.0.0.1 -R',
    'socktune server --sockperf --io-model workers    # then: sockperf pp --tcp -i 127.0.0.1 -p 11111',
    'socktune server --service echo -p 7000 --io-model workers --json    # then: socktune rr --raw -c 127.0.0.1:7000',
  ],
  async run(values, io) {
    const modes = ['sockperf', 'iperf3', 'service'].filter((mode) => values[mode] !== undefined);
    if (modes.length > 1) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `choose one of --iperf3, --sockperf and --service, not ${modes.map((mode) => `--${mode}`).join(' and ')}`);
    const log = jsonLog(values, io);
    if (values.sockperf) return serveSockperf(values, io, log);
    if (values.iperf3) return serveIperf3(values, io, log);
    if (values.service !== undefined) return serveService(values, io, log);
    const unix = str(values, 'unix');
    const maxTests = str(values, 'max-tests');
    const perClient = str(values, 'max-per-client');
    const maxDuration = str(values, 'max-duration');
    const token = authToken(values);
    const maxRate = str(values, 'max-rate');
    const server = new BenchServer({
      ...listenPort(values, DEFAULT_CONTROL_PORT),
      ...(unix === undefined ? {} : { path: unix }),
      ...(maxTests === undefined ? {} : { maxTests: parseCount(maxTests, '--max-tests', 1, 10_000) }),
      ...(perClient === undefined ? {} : { maxTestsPerPeer: parseCount(perClient, '--max-per-client', 1, 10_000) }),
      ...(maxDuration === undefined ? {} : { maxTestDurationMs: parseSeconds(maxDuration, '--max-duration') * 1000 }),
      ...(token === undefined ? {} : { authToken: token }),
      ...maxSendRate(values),
      oneOff: values['one-off'] === true,
    });
    const address = await server.listen();
    const limits = [token === undefined ? '' : 'clients must prove the auth token', maxRate === undefined ? '' : `tests send at most ${maxRate}bit/s`].filter(Boolean);
    announce(io, log, 'socktune server', address, limits.length > 0 ? ` (${limits.join('; ')})` : '');
    server.on('test', (entry: TestLog) => {
      const detail = entry.outcome === 'done' ? `in ${entry.bytesIn} B, out ${entry.bytesOut} B` : entry.error;
      io.err(`test from ${entry.peer}: ${entry.service} (${entry.ioModel}) ${entry.outcome}: ${detail}`);
      log?.('test', { ...entry });
    });
    await untilStopped(server);
    await server.close();
    return 0;
  },
};

/** Writes one JSON line per server event on stdout (--json), or nothing. */
type JsonLog = ((event: string, fields: Record<string, unknown>) => void) | undefined;

function jsonLog(values: Values, io: Io): JsonLog {
  if (values.json !== true) return undefined;
  return (event, fields) => io.out(JSON.stringify({ schema: RESULT_SCHEMA, command: 'server', event, time: new Date().toISOString(), ...fields }));
}

function announce(io: Io, log: JsonLog, what: string, address: ServerAddress, detail = ''): void {
  if (log) log('listening', { address });
  else io.out(`${what} listening on ${describeAddress(address)}${detail}`);
}

/** --max-rate (bits/s, like iperf3 -b) as the bytes per second the library's maxSendRate takes. */
function maxSendRate(values: Values): { maxSendRate?: number } {
  const rate = str(values, 'max-rate');
  return rate === undefined ? {} : { maxSendRate: Math.max(1, Math.round(parseBitRate(rate, '--max-rate') / 8)) };
}

function listenPort(values: Values, fallback: number): { host: string; port: number } {
  const port = str(values, 'port');
  return { host: str(values, 'bind') ?? '127.0.0.1', port: port === undefined ? fallback : parseCount(port, '--port', 0, 65535) };
}

/** Serves until stopped, then reports the counters: on stdout with --json, errors on stderr. */
/** How often a serving server reports connections it turned away or closed on errors. */
const ERROR_REPORT_MS = 1000;

/** One line (or JSON event) per second in which connections were refused or closed on errors, with the counts by code. */
function reportErrors(server: SocktuneServer, io: Io, log: JsonLog): NodeJS.Timeout {
  let reported: Record<string, number> = {};
  return setInterval(() => {
    const { errors } = server.metrics();
    const grown = Object.entries(errors).filter(([code, count]) => count > (reported[code] ?? 0)).map(([code, count]) => [code, count - (reported[code] ?? 0)] as const);
    reported = errors;
    if (grown.length === 0) return;
    if (log) log('errors', { errors: Object.fromEntries(grown) });
    else io.err(`${new Date().toISOString()} connections refused or closed on errors: ${grown.map(([code, count]) => `${code} ×${count}`).join(', ')}`);
  }, ERROR_REPORT_MS).unref();
}

async function serveUntilStopped(server: SocktuneServer, io: Io, log: JsonLog): Promise<number> {
  const reporter = reportErrors(server, io, log);
  await untilStopped();
  clearInterval(reporter);
  const metrics = server.metrics();
  const { destroyed } = await server.close();
  log?.('stopped', { metrics: { ...metrics, destroyedAtClose: destroyed } });
  const problems = Object.entries(metrics.errors);
  if (problems.length > 0) io.err(`connections closed on errors: ${problems.map(([code, count]) => `${code} ×${count}`).join(', ')}`);
  return 0;
}

async function serveSockperf(values: Values, io: Io, log: JsonLog): Promise<number> {
  const { ioModel, workers, blocking } = serverSettings(values);
  const server = createSockperfServer({ ...listenPort(values, SOCKPERF_DEFAULT_PORT), ioModel, ...(workers === undefined ? {} : { workers }), blocking: blocking === true });
  const address = await server.listen();
  announce(io, log, 'socktune sockperf server', address, ` (${server.options.ioModel}${server.options.blocking ? ', blocking' : ''})`);
  return serveUntilStopped(server, io, log);
}

async function serveService(values: Values, io: Io, log: JsonLog): Promise<number> {
  const service = str(values, 'service')!;
  if (!(BUILTIN_SERVICES as readonly string[]).includes(service)) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--service takes one of ${BUILTIN_SERVICES.join(', ')}, got ${JSON.stringify(service)}`);
  }
  const maxConnections = str(values, 'max-connections');
  const idleTimeout = str(values, 'idle-timeout');
  const maxPerIp = str(values, 'max-per-ip');
  const server = createServer({
    ...listenPort(values, DEFAULT_CONTROL_PORT),
    ...serverSettings(values),
    ...(maxConnections === undefined ? {} : { maxConnections: parseCount(maxConnections, '--max-connections', 1, 10_000_000) }),
    ...(maxPerIp === undefined ? {} : { maxConnectionsPerIp: parseCount(maxPerIp, '--max-per-ip', 1, 10_000_000) }),
    ...(idleTimeout === undefined ? {} : { idleTimeout: Math.round(parseSeconds(idleTimeout, '--idle-timeout') * 1000) }),
    ...maxSendRate(values),
    handler: service as BuiltinService,
  });
  const address = await server.listen();
  announce(io, log, `socktune ${service} service`, address, ` (${server.options.ioModel}${server.options.blocking ? ', blocking' : ''})`);
  for (const warning of server.warnings) io.err(`warning: ${warning.message}`);
  return serveUntilStopped(server, io, log);
}

async function serveIperf3(values: Values, io: Io, log: JsonLog): Promise<number> {
  const maxTests = str(values, 'max-tests');
  const server = new Iperf3Server({
    ...listenPort(values, IPERF3_DEFAULT_PORT),
    ...(maxTests === undefined ? {} : { maxTests: parseCount(maxTests, '--max-tests', 1, 10_000) }),
  });
  const address = await server.listen();
  announce(io, log, 'socktune iperf3 server', address, ` (up to ${server.options.maxTests} tests at once)`);
  server.on('test', (entry: Iperf3TestLog) => {
    io.err(`iperf3 test from ${entry.peer}: ${entry.outcome}${entry.error ? `: ${entry.error}` : ''}`);
    if (entry.summary) io.err(entry.summary.trimEnd());
    log?.('test', { peer: entry.peer, outcome: entry.outcome, ...(entry.error ? { error: entry.error } : {}) });
  });
  await untilStopped();
  await server.close();
  return 0;
}

function describeAddress(address: ServerAddress): string {
  if (address.family === 'unix') return address.path;
  return `${address.family === 'ipv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/** Resolves on Ctrl-C or SIGTERM, or when `server` says it is done (a one-off server). */
function untilStopped(server?: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    server?.once('done', stop);
  });
}
