import { BenchServer, type TestLog } from '../../bench/server/bench-server.ts';
import { RESULT_SCHEMA } from '../../bench/results/result.ts';
import { BUILTIN_SERVICES, type BuiltinService } from '../../transport/server-options.ts';
import { createServer, type SocktuneServer } from '../../transport/server.ts';
import { createSockperfServer, SOCKPERF_DEFAULT_PORT } from '../../protocols/sockperf/server.ts';
import { IPERF3_DEFAULT_PORT, Iperf3Server, type Iperf3ServerOptions, type Iperf3TestLog } from '../../protocols/iperf3/server.ts';
import { MAX_TEST_DURATION_MS } from '../../bench/control/control-protocol.ts';
import { parseCpuList, pinProcess } from '../../core/affinity.ts';
import { openFilesLimit, raiseOpenFilesLimit } from '../../core/limits.ts';
import { definedOnly } from '../../core/validate.ts';
import { MAX_BUFFER_BUDGET } from '../../transport/buffer-budget.ts';
import { SendBudget } from '../../transport/send-budget.ts';
import type { ServerOptions } from '../../transport/server-options.ts';
import { readFile } from 'node:fs/promises';
import { SocktuneError } from '../../core/errors.ts';
import type { EventEmitter } from 'node:events';
import type { ServerAddress } from '../../transport/server.ts';
import type { Command, Io, Values } from '../command.ts';
import { authToken, DEFAULT_CONTROL_PORT, serverSettings, str } from '../client-settings.ts';
import { parseBitRate, parseCount, parseSeconds, parseSize } from '../units.ts';

export const serverCommand: Command = {
  name: 'server',
  summary: 'serve stream, rr and tune tests to socktune clients (several at once)',
  usage: 'socktune server [-p 5210] [--bind ADDR | --unix PATH] [--one-off] [limits] [--iperf3 | --sockperf | --service NAME] [--json]',
  flags: {
    port: { help: `control port (default ${DEFAULT_CONTROL_PORT}; 0 picks a free one)`, spec: { type: 'string', short: 'p' } },
    bind: { help: 'address to listen on (default 127.0.0.1)', spec: { type: 'string', short: 'B' } },
    unix: { help: 'listen on a Unix-domain socket path instead', spec: { type: 'string' } },
    'one-off': { help: 'exit after one test', spec: { type: 'boolean', short: '1' } },
    'max-tests': { help: 'tests at once before new clients are refused (default 16; --iperf3: 4)', spec: { type: 'string' } },
    'max-per-client': {
      help: 'control connections at once from one client address (default 8; --iperf3: tests at once, default 2)',
      spec: { type: 'string' },
    },
    'max-duration': {
      help: "longest a test may last in seconds, the client's grace included (a 10 s stream asks for 20 s) (default 600)",
      spec: { type: 'string' },
    },
    'test-idle-timeout': {
      help: 'seconds a test may go without a byte or a connection before the server ends it (default 60)',
      spec: { type: 'string' },
    },
    'max-rate': {
      help: 'cap what the whole server sends, every test and connection together, in bits/s like iperf3 -b (e.g. 100M, 1G): a public server is no free traffic cannon',
      spec: { type: 'string' },
    },
    'auth-token': {
      help: 'require clients to prove this shared secret (HMAC-SHA256 challenge) before any test; better: SOCKTUNE_AUTH_TOKEN, which stays out of ps',
      spec: { type: 'string' },
    },
    'rsa-private-key-path': {
      help: '--iperf3: the PEM private key iperf3 clients encrypt their credentials for (iperf3 -s --rsa-private-key-path)',
      spec: { type: 'string' },
    },
    'time-skew-threshold': {
      help: "--iperf3: seconds a client's credentials may be old or early (default 10), as iperf3 -s --time-skew-threshold",
      spec: { type: 'string' },
    },
    'max-streams': { help: '--iperf3: most data streams one test may open, -P × (2 with --bidir) (default 128)', spec: { type: 'string' } },
    'max-total-streams': {
      help: '--iperf3: data streams of every test together; a test that would go over is told the server is busy (default 128)',
      spec: { type: 'string' },
    },
    'authorized-users-path': {
      help: '--iperf3: the users file (user,sha256 of "{user}password" per line), as iperf3 -s --authorized-users-path',
      spec: { type: 'string' },
    },
    'max-connections': {
      help: 'data connections open at once, every test together (default 20000; --service, --sockperf, --iperf3: connections of any kind, 10000)',
      spec: { type: 'string' },
    },
    'max-connections-per-test': { help: 'data connections one test may have open (default 10000)', spec: { type: 'string' } },
    'max-handshakes': {
      help: 'control connections still in their handshake, every client together; a newcomer over it ends the oldest (default 64)',
      spec: { type: 'string' },
    },
    'max-threads': {
      help: 'server threads every test together may hold (default 64; --service, --sockperf: the thread-per-conn pool, default 64)',
      spec: { type: 'string' },
    },
    'max-threads-per-test': {
      help: 'most --workers a test may ask for, and the thread pool of a thread-per-conn test (default 16)',
      spec: { type: 'string' },
    },
    'max-socket-buffer': {
      help: 'largest SO_SNDBUF/SO_RCVBUF a client may ask for (default 64M; --iperf3: -w, default 16M)',
      spec: { type: 'string' },
    },
    'max-chunk': { help: 'largest write size a client may ask for (default 1M; --iperf3: -l)', spec: { type: 'string' } },
    'max-buffered': {
      help: 'memory partly received messages may hold, every connection together (default 256M)',
      spec: { type: 'string' },
    },
    iperf3: {
      help: `answer stock iperf3 clients (TCP: -R, --bidir, -P, -n, -k, -l, -w, -N, -O, -J, --get-server-output) instead, on port ${IPERF3_DEFAULT_PORT} unless -p; several tests at once`,
      spec: { type: 'boolean' },
    },
    sockperf: {
      help: `answer stock sockperf clients (pp, ul, tp) instead, on port ${SOCKPERF_DEFAULT_PORT} unless -p`,
      spec: { type: 'boolean' },
    },
    service: {
      help: `serve one built-in service on the port itself, no control channel (${BUILTIN_SERVICES.join(', ')}): a backend for L4 balancers and --raw clients`,
      spec: { type: 'string' },
    },
    'io-model': { help: '--sockperf, --service: loop, workers or thread-per-conn (default loop)', spec: { type: 'string' } },
    workers: { help: '--sockperf, --service: threads for --io-model workers (default: CPUs)', spec: { type: 'string' } },
    blocking: { help: '--sockperf, --service with thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
    'max-per-ip': {
      help: '--service, --sockperf, --iperf3: connections at once from one client address (default 1024)',
      spec: { type: 'string' },
    },
    'idle-timeout': {
      help: '--service, --sockperf: seconds a connection may stay quiet before it is closed (default 300; 0: never)',
      spec: { type: 'string' },
    },
    window: { help: '--service: SO_SNDBUF and SO_RCVBUF of the served sockets, e.g. 256K', spec: { type: 'string', short: 'w' } },
    affinity: {
      help: 'pin the whole server (every thread, every test) to these CPUs, e.g. 1 or 2-3',
      spec: { type: 'string', short: 'A' },
    },
    json: {
      help: 'print JSON lines on stdout: where it listens, each test that ends, the counters when it stops',
      spec: { type: 'boolean' },
    },
  },
  examples: [
    'socktune server',
    'socktune server -p 6000 --bind 0.0.0.0',
    'socktune server --one-off -p 0',
    'socktune server --iperf3 --max-tests 8    # then: iperf3 -c 127.0.0.1 -R',
    "socktune server --iperf3 --rsa-private-key-path key.pem --authorized-users-path users.csv    # iperf3's own authentication",
    'SOCKTUNE_AUTH_TOKEN=$(openssl rand -hex 16) socktune server --bind 0.0.0.0 --max-rate 1G --max-threads 16',
    'socktune server --sockperf --io-model workers    # then: sockperf pp --tcp -i 127.0.0.1 -p 11111',
    'socktune server --service echo -p 7000 --io-model workers --json    # then: socktune rr --raw -c 127.0.0.1:7000',
  ],
  async run(values, io) {
    const modes = ['sockperf', 'iperf3', 'service'].filter((mode) => values[mode] !== undefined);
    if (modes.length > 1)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `choose one of --iperf3, --sockperf and --service, not ${modes.map((mode) => `--${mode}`).join(' and ')}`,
      );
    const mode: Mode = values.sockperf ? 'sockperf' : values.iperf3 ? 'iperf3' : values.service !== undefined ? 'service' : 'control';
    checkModeFlags(mode, values);
    const log = jsonLog(values, io);
    const openFiles = raiseOpenFilesLimit(openFilesLimit().hard).soft;
    const cpus = str(values, 'affinity');
    if (cpus !== undefined) pinProcess(parseCpuList(cpus, '-A'));
    if (mode === 'sockperf') return serveSockperf(values, io, log, openFiles);
    if (mode === 'iperf3') return serveIperf3(values, io, log, openFiles);
    if (mode === 'service') return serveService(values, io, log, openFiles);
    const unix = str(values, 'unix');
    const token = authToken(values, { server: true });
    const maxRate = str(values, 'max-rate');
    const server = new BenchServer({
      ...listenPort(values, DEFAULT_CONTROL_PORT),
      ...(unix === undefined ? {} : { path: unix }),
      maxTests: count(values, 'max-tests', 10_000),
      maxTestsPerPeer: count(values, 'max-per-client', 10_000),
      maxHandshakes: count(values, 'max-handshakes', 100_000),
      maxTestDurationMs: millis(values, 'max-duration', 1000, MAX_TEST_DURATION_MS),
      testIdleTimeoutMs: millis(values, 'test-idle-timeout', 1000, MAX_TEST_DURATION_MS),
      maxConnections: count(values, 'max-connections', 10_000_000),
      maxConnectionsPerTest: count(values, 'max-connections-per-test', 10_000_000),
      maxThreads: count(values, 'max-threads', 65_536),
      maxThreadsPerTest: count(values, 'max-threads-per-test', 65_536),
      maxSocketBuffer: size(values, 'max-socket-buffer', 2 ** 31 - 1),
      maxChunkSize: size(values, 'max-chunk', 64 * 1024 * 1024),
      maxBufferedBytes: size(values, 'max-buffered', MAX_BUFFER_BUDGET),
      ...(token === undefined ? {} : { authToken: token }),
      ...maxSendRate(values),
      oneOff: values['one-off'] === true,
    });
    const address = await server.listen();
    const limits = [
      token === undefined ? '' : 'clients must prove the auth token',
      maxRate === undefined ? '' : `the server sends at most ${maxRate}bit/s`,
    ].filter(Boolean);
    announce(io, log, 'socktune server', address, openFiles, limits.length > 0 ? `; ${limits.join('; ')}` : '');
    if (server.connectionCap < server.options.maxConnections) {
      io.err(
        `warning: data connections of all tests together are capped at ${server.connectionCap}, not ${server.options.maxConnections}: the open-files limit (${openFiles}) must leave room for the control port, new tests and their threads (raise it with ulimit -n)`,
      );
    }
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

type Mode = 'control' | 'iperf3' | 'sockperf' | 'service';

const EVERY_MODE = ['port', 'bind', 'json', 'max-rate', 'affinity', 'iperf3', 'sockperf', 'service'];
/** The flags each mode takes: any other is refused, so that no flag, least of all a security flag, silently does nothing. */
const MODE_FLAGS: Readonly<Record<Mode, readonly string[]>> = {
  control: [
    'unix',
    'one-off',
    'max-tests',
    'max-handshakes',
    'max-per-client',
    'max-duration',
    'test-idle-timeout',
    'auth-token',
    'max-connections',
    'max-connections-per-test',
    'max-threads',
    'max-threads-per-test',
    'max-socket-buffer',
    'max-chunk',
    'max-buffered',
  ],
  iperf3: [
    'max-tests',
    'max-per-client',
    'max-duration',
    'max-socket-buffer',
    'max-chunk',
    'max-streams',
    'max-total-streams',
    'max-connections',
    'max-per-ip',
    'rsa-private-key-path',
    'authorized-users-path',
    'time-skew-threshold',
  ],
  sockperf: ['io-model', 'workers', 'blocking', 'max-threads', 'max-connections', 'max-per-ip', 'idle-timeout', 'max-buffered'],
  service: ['io-model', 'workers', 'blocking', 'max-threads', 'max-connections', 'max-per-ip', 'idle-timeout', 'window', 'max-buffered'],
};

/** Why a flag has no meaning in a mode, where the reason is worth more than "not for this mode". */
function whyNot(mode: Mode, flag: string): string | undefined {
  const flagName = mode === 'service' ? '--service' : `--${mode}`;
  if (flag === 'auth-token' && mode === 'iperf3')
    return "iperf3 clients cannot answer socktune's challenge: they authenticate with RSA, as with iperf3 -s; give --rsa-private-key-path and --authorized-users-path";
  if (flag === 'auth-token')
    return `the ${mode === 'sockperf' ? 'sockperf protocol' : 'bare service port'} has no authentication, so --auth-token could not protect it: bind a private address (--bind), let only known clients reach it (a firewall), and keep --max-connections/--max-per-ip low; or run the control server (socktune server) instead`;
  if (flag === 'max-duration' || flag === 'test-idle-timeout')
    return `${flagName} runs no tests to time: connections are bounded by --idle-timeout and --max-connections`;
  return undefined;
}

function checkModeFlags(mode: Mode, values: Values): void {
  const allowed = new Set([...EVERY_MODE, ...MODE_FLAGS[mode]]);
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || allowed.has(flag)) continue;
    const modeName =
      mode === 'control' ? 'the control server (no --iperf3, --sockperf or --service)' : mode === 'service' ? '--service' : `--${mode}`;
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--${flag} does nothing for ${modeName}: ${whyNot(mode, flag) ?? `it takes ${[...MODE_FLAGS[mode]].map((name) => `--${name}`).join(', ')}`}`,
    );
  }
  if (mode !== 'control' && mode !== 'iperf3' && process.env.SOCKTUNE_AUTH_TOKEN) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `SOCKTUNE_AUTH_TOKEN is set, but ${whyNot(mode, 'auth-token')!.replace('--auth-token', 'a token')}; unset it to serve without authentication`,
    );
  }
}

function count(values: Values, flag: string, max: number): number | undefined {
  const text = str(values, flag);
  return text === undefined ? undefined : parseCount(text, `--${flag}`, 1, max);
}

function size(values: Values, flag: string, max: number): number | undefined {
  const text = str(values, flag);
  if (text === undefined) return undefined;
  const bytes = parseSize(text, `--${flag}`);
  if (bytes > max) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${flag} takes at most ${max} bytes, got ${JSON.stringify(text)}`);
  return bytes;
}

/** A duration flag in milliseconds, within what the server can time. */
function millis(values: Values, flag: string, minMs: number, maxMs: number): number | undefined {
  const text = str(values, flag);
  if (text === undefined) return undefined;
  const ms = Math.round(parseSeconds(text, `--${flag}`) * 1000);
  if (ms < minMs || ms > maxMs)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--${flag} takes ${minMs / 1000} to ${maxMs / 1000} seconds, got ${JSON.stringify(text)}`,
    );
  return ms;
}

/** Writes one JSON line per server event on stdout (--json), or nothing. */
type JsonLog = ((event: string, fields: Record<string, unknown>) => void) | undefined;

function jsonLog(values: Values, io: Io): JsonLog {
  if (values.json !== true) return undefined;
  return (event, fields) =>
    io.out(JSON.stringify({ schema: RESULT_SCHEMA, command: 'server', event, time: new Date().toISOString(), ...fields }));
}

/** Where it listens, and the open-files limit it raised itself to: the most connections it can hold. */
function announce(io: Io, log: JsonLog, what: string, address: ServerAddress, openFiles: number, detail = ''): void {
  if (log) log('listening', { address, openFiles });
  else io.out(`${what} listening on ${describeAddress(address)} (open files: ${openFiles}${detail})`);
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
    const grown = Object.entries(errors)
      .filter(([code, count]) => count > (reported[code] ?? 0))
      .map(([code, count]) => [code, count - (reported[code] ?? 0)] as const);
    reported = errors;
    if (grown.length === 0) return;
    if (log) log('errors', { errors: Object.fromEntries(grown) });
    else
      io.err(
        `${new Date().toISOString()} connections refused or closed on errors: ${grown.map(([code, count]) => `${code} ×${count}`).join(', ')}`,
      );
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

/** The limits --sockperf and --service share: a bare port faces strangers with no handshake. */
function bareServerLimits(
  values: Values,
): Pick<ServerOptions, 'maxConnections' | 'maxConnectionsPerIp' | 'idleTimeout' | 'maxSendRate' | 'maxBufferedBytes' | 'maxThreads'> {
  const idleTimeout = str(values, 'idle-timeout');
  return definedOnly({
    maxThreads: count(values, 'max-threads', 65_536),
    maxConnections: count(values, 'max-connections', 10_000_000),
    maxConnectionsPerIp: count(values, 'max-per-ip', 10_000_000),
    idleTimeout: idleTimeout === undefined ? undefined : Math.round(parseSeconds(idleTimeout, '--idle-timeout') * 1000),
    maxBufferedBytes: size(values, 'max-buffered', MAX_BUFFER_BUDGET),
    ...maxSendRate(values),
  });
}

function modelDetail(server: SocktuneServer): string {
  const rate = server.options.maxSendRate;
  return `; ${server.options.ioModel}${server.options.blocking ? ', blocking' : ''}${rate === undefined ? '' : `; sends at most ${describeRate(rate)}`}`;
}

function describeRate(rate: number | SendBudget): string {
  const bytesPerSecond = typeof rate === 'number' ? rate : rate.bytesPerSecond;
  return `${(bytesPerSecond * 8) / 1e6} Mbit/s`;
}

async function serveSockperf(values: Values, io: Io, log: JsonLog, openFiles: number): Promise<number> {
  const { ioModel, workers, blocking } = serverSettings(values);
  const server = createSockperfServer({
    ...listenPort(values, SOCKPERF_DEFAULT_PORT),
    ioModel,
    ...(workers === undefined ? {} : { workers }),
    blocking: blocking === true,
    ...bareServerLimits(values),
  });
  const address = await server.listen();
  announce(io, log, 'socktune sockperf server', address, openFiles, modelDetail(server));
  return serveUntilStopped(server, io, log);
}

async function serveService(values: Values, io: Io, log: JsonLog, openFiles: number): Promise<number> {
  const service = str(values, 'service')!;
  if (!(BUILTIN_SERVICES as readonly string[]).includes(service)) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--service takes one of ${BUILTIN_SERVICES.join(', ')}, got ${JSON.stringify(service)}`);
  }
  const server = createServer({
    ...listenPort(values, DEFAULT_CONTROL_PORT),
    ...serverSettings(values),
    ...bareServerLimits(values),
    handler: service as BuiltinService,
  });
  const address = await server.listen();
  announce(io, log, `socktune ${service} service`, address, openFiles, modelDetail(server));
  for (const warning of server.warnings) io.err(`warning: ${warning.message}`);
  return serveUntilStopped(server, io, log);
}

async function serveIperf3(values: Values, io: Io, log: JsonLog, openFiles: number): Promise<number> {
  const rate = maxSendRate(values).maxSendRate;
  const server = new Iperf3Server({
    ...listenPort(values, IPERF3_DEFAULT_PORT),
    ...definedOnly({
      maxTests: count(values, 'max-tests', 10_000),
      maxTestsPerClient: count(values, 'max-per-client', 10_000),
      maxDurationMs: millis(values, 'max-duration', 1000, MAX_TEST_DURATION_MS),
      maxWindow: size(values, 'max-socket-buffer', 2 ** 31 - 1),
      maxBlockLength: size(values, 'max-chunk', 16 * 1024 * 1024),
      maxStreams: count(values, 'max-streams', 256),
      maxTotalStreams: count(values, 'max-total-streams', 10_000_000),
      maxConnections: count(values, 'max-connections', 10_000_000),
      maxConnectionsPerIp: count(values, 'max-per-ip', 10_000_000),
      sendBudget: rate === undefined ? undefined : new SendBudget(rate),
      auth: await iperf3Auth(values),
    }),
  });
  const address = await server.listen();
  const { maxTests, maxTestsPerClient } = server.options;
  const detail = [
    `up to ${maxTests} tests at once, ${maxTestsPerClient} per client`,
    values['rsa-private-key-path'] === undefined ? '' : 'clients must authenticate (RSA)',
    rate === undefined ? '' : `sends at most ${describeRate(rate)}`,
  ].filter(Boolean);
  announce(io, log, 'socktune iperf3 server', address, openFiles, `; ${detail.join('; ')}`);
  // Refusals and failed handshakes cost a client one connection each: list 10 a second, count the rest in one line a second.
  const listedPerSecond = 10;
  let listed = 0;
  const unlisted = new Map<string, number>();
  const summarize = (): void => {
    listed = 0;
    if (unlisted.size === 0) return;
    const codes = Object.fromEntries(unlisted);
    const more = [...unlisted.values()].reduce((sum, n) => sum + n, 0);
    unlisted.clear();
    if (log) log('suppressed', { count: more, codes });
    else
      io.err(
        `… and ${more} more refused or failed: ${Object.entries(codes)
          .map(([code, n]) => `${code} ×${n}`)
          .join(', ')}`,
      );
  };
  const summarizer = setInterval(summarize, 1000).unref();
  server.on('test', (entry: Iperf3TestLog) => {
    if (entry.outcome !== 'done') {
      if (listed >= listedPerSecond) {
        const code = entry.code ?? 'other';
        unlisted.set(code, (unlisted.get(code) ?? 0) + 1);
        return;
      }
      listed++;
    }
    io.err(`iperf3 test from ${entry.peer}: ${entry.outcome}${entry.error ? `: ${entry.error}` : ''}`);
    if (entry.summary) io.err(entry.summary.trimEnd());
    log?.('test', {
      peer: entry.peer,
      outcome: entry.outcome,
      ...(entry.code ? { code: entry.code } : {}),
      ...(entry.error ? { error: entry.error } : {}),
    });
  });
  await untilStopped();
  clearInterval(summarizer);
  summarize();
  await server.close();
  return 0;
}

/** iperf3's own authentication: both files, or neither. */
async function iperf3Auth(values: Values): Promise<Iperf3ServerOptions['auth']> {
  const keyPath = str(values, 'rsa-private-key-path');
  const usersPath = str(values, 'authorized-users-path');
  if (keyPath === undefined && usersPath === undefined) {
    if (values['time-skew-threshold'] !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--time-skew-threshold goes with --rsa-private-key-path and --authorized-users-path');
    return undefined;
  }
  if (keyPath === undefined || usersPath === undefined) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'iperf3 authentication needs both --rsa-private-key-path and --authorized-users-path');
  }
  const read = (path: string, flag: string): Promise<string> =>
    readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag}: cannot read ${path}: ${error.code ?? error.message}`);
    });
  const skew = count(values, 'time-skew-threshold', 86_400);
  return {
    privateKey: await read(keyPath, '--rsa-private-key-path'),
    authorizedUsers: await read(usersPath, '--authorized-users-path'),
    ...(skew === undefined ? {} : { timeSkewThresholdSec: skew }),
  };
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
