import { MAX_TEST_DURATION_MS } from '../../../bench/control/control-protocol.ts';
import { CONTROL_SERVER_DEFAULTS as DEFAULTS, ControlServer, type TestLog } from '../../../bench/servers/control/control-server.ts';
import { MAX_BUFFER_BUDGET } from '../../../transport/io/buffer-budget.ts';
import type { Command } from '../../command.ts';
import { authToken, DEFAULT_CONTROL_PORT, str } from '../../client-settings.ts';
import { describeSize } from '../../units.ts';
import { printable } from '../../../core/printable.ts';
import { SocktuneError } from '../../../core/errors.ts';
import {
  announce,
  clientLogLimiter,
  commonServerFlags,
  ipv6Prefix,
  jsonLog,
  listenPort,
  maxSendRate,
  prepareProcess,
  untilStopped,
} from './common.ts';
import { count, millis, portRange, size } from './flag-values.ts';
import { definedOnly } from '../../../core/validate.ts';

/** `socktune server` itself: the control server that runs stream, rr, crr, conns, msg and tune tests for socktune clients. */
export const controlServerCommand: Command = {
  name: 'server',
  summary: 'serve stream, rr and tune tests to socktune clients (several at once)',
  usage:
    `socktune server [-p ${DEFAULT_CONTROL_PORT}] [--bind ADDR | --unix PATH] [--one-off] ` +
    '[limits] [--json]\n       socktune server iperf3|sockperf|service NAME [options]    (see ' +
    'socktune server MODE --help)',
  flags: {
    ...commonServerFlags(DEFAULT_CONTROL_PORT),
    unix: { help: 'listen on a Unix-domain socket path instead', spec: { type: 'string' } },
    'one-off': { help: 'exit after one test that authenticated and ran', spec: { type: 'boolean', short: '1' } },
    'auth-token': {
      help:
        'require clients to prove this shared secret (HMAC-SHA256 challenge) before any test; ' +
        'better: SOCKTUNE_AUTH_TOKEN, which stays out of ps',
      spec: { type: 'string' },
    },
    'max-tests': { help: `tests at once before new clients are refused (default ${DEFAULTS.maxTests})`, spec: { type: 'string' } },
    'max-per-client': {
      help: `control connections at once from one client address (default ${DEFAULTS.maxTestsPerPeer})`,
      spec: { type: 'string' },
    },
    'max-handshakes': {
      help:
        'control connections still in their handshake, every client together; a newcomer over it ' +
        `ends the oldest (default ${DEFAULTS.maxHandshakes})`,
      spec: { type: 'string' },
    },
    'max-duration': {
      help:
        "longest a test may last in seconds, the client's grace included (a 10 s stream asks for " +
        `20 s) (default ${DEFAULTS.maxTestDurationMs / 1000})`,
      spec: { type: 'string' },
    },
    'test-idle-timeout': {
      help: `seconds a test may go without a byte or a connection before the server ends it (default ${DEFAULTS.testIdleTimeoutMs / 1000})`,
      spec: { type: 'string' },
    },
    'max-connections': {
      help: `data connections open at once, every test together (default ${DEFAULTS.maxConnections})`,
      spec: { type: 'string' },
    },
    'max-connections-per-test': {
      help: `data connections one test may have open (default ${DEFAULTS.maxConnectionsPerTest})`,
      spec: { type: 'string' },
    },
    'max-threads': { help: `server threads every test together may hold (default ${DEFAULTS.maxThreads})`, spec: { type: 'string' } },
    'max-threads-per-client': {
      help:
        'server threads one client address may hold, its tests together (default a quarter of ' +
        '--max-threads and at least --max-threads-per-test: ' +
        `${Math.max(DEFAULTS.maxThreadsPerTest, Math.floor(DEFAULTS.maxThreads / 4))})`,
      spec: { type: 'string' },
    },
    'max-threads-per-test': {
      help: `most --workers a test may ask for, and the thread pool of a thread-per-conn test (default ${DEFAULTS.maxThreadsPerTest})`,
      spec: { type: 'string' },
    },
    'max-socket-buffer': {
      help: `largest SO_SNDBUF/SO_RCVBUF a client may ask for (default ${describeSize(DEFAULTS.maxSocketBuffer)})`,
      spec: { type: 'string' },
    },
    'max-chunk': {
      help: `largest write size a client may ask for (default ${describeSize(DEFAULTS.maxChunkSize)})`,
      spec: { type: 'string' },
    },
    'max-buffered': {
      help: `memory partly received messages may hold, every connection together (default ${describeSize(DEFAULTS.maxBufferedBytes)})`,
      spec: { type: 'string' },
    },
    'max-barrier-clients': {
      help: `clients waiting at start barriers at once (--barrier clients of every test together) (default ${DEFAULTS.maxBarrierClients})`,
      spec: { type: 'string' },
    },
    'data-ports': {
      help:
        "ports for the tests' data listeners, TCP and UDP, e.g. 20000-20999: a firewall or NetworkPolicy opens just these " +
        'and the control port (default: any free port); a test finding none free is refused',
      spec: { type: 'string' },
      value: '<from-to>',
    },
  },
  examples: [
    'socktune server',
    'socktune server -p 6000 --bind 0.0.0.0',
    'socktune server --one-off -p 0',
    'socktune server --bind 0.0.0.0 --data-ports 20000-20099    # behind a firewall: open 5210 and 20000-20099',
    'SOCKTUNE_AUTH_TOKEN=$(openssl rand -hex 16) socktune server --bind 0.0.0.0 --max-rate 1G --max-threads 16',
    'socktune server iperf3    # stock iperf3 clients: socktune server iperf3 --help',
    'socktune server sockperf    # stock sockperf clients',
    'socktune server service echo -p 7000    # a bare echo port for --raw clients and balancers',
  ],
  async run(values, io) {
    const log = jsonLog(values, io);
    const openFiles = prepareProcess(values);
    const unix = str(values, 'unix');
    if (unix !== undefined && values['data-ports'] !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--data-ports is for IP listeners: with --unix each test gets a path, not a port');
    const token = authToken(values, { server: true });
    const ports = portRange(values, 'data-ports');
    const control = listenPort(values, DEFAULT_CONTROL_PORT);
    if (ports !== undefined && control.port >= ports.from && control.port <= ports.to)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `--data-ports ${ports.from}-${ports.to} holds the control port -p ${control.port}: give the tests other ports`,
      );
    const maxRate = str(values, 'max-rate');
    const server = new ControlServer({
      ...control,
      ...(unix === undefined ? {} : { path: unix }),
      maxTests: count(values, 'max-tests', 10_000),
      maxTestsPerPeer: count(values, 'max-per-client', 100_000),
      ...ipv6Prefix(values),
      maxHandshakes: count(values, 'max-handshakes', 100_000),
      maxBarrierClients: count(values, 'max-barrier-clients', 100_000),
      maxTestDurationMs: millis(values, 'max-duration', 1000, MAX_TEST_DURATION_MS),
      testIdleTimeoutMs: millis(values, 'test-idle-timeout', 1000, MAX_TEST_DURATION_MS),
      maxConnections: count(values, 'max-connections', 10_000_000),
      maxConnectionsPerTest: count(values, 'max-connections-per-test', 10_000_000),
      maxThreads: count(values, 'max-threads', 65_536),
      maxThreadsPerTest: count(values, 'max-threads-per-test', 65_536),
      maxThreadsPerClient: count(values, 'max-threads-per-client', 65_536),
      maxSocketBuffer: size(values, 'max-socket-buffer', 2 ** 31 - 1),
      maxChunkSize: size(values, 'max-chunk', 64 * 1024 * 1024),
      maxBufferedBytes: size(values, 'max-buffered', MAX_BUFFER_BUDGET),
      ...(token === undefined ? {} : { authToken: token }),
      ...maxSendRate(values),
      oneOff: values['one-off'] === true,
      ...definedOnly({ dataPorts: ports }),
    });
    // Signals are ours before anyone can learn where it listens: one that arrived earlier would kill it uncleanly.
    const stopped = untilStopped(server);
    const address = await server.listen();
    const { dataPorts } = server.options;
    const limits = [
      dataPorts === undefined ? '' : `tests' data ports ${dataPorts.from}-${dataPorts.to}`,
      token === undefined ? '' : 'clients must prove the auth token',
      maxRate === undefined ? '' : `the server sends at most ${maxRate}bit/s`,
    ].filter(Boolean);
    announce(io, log, 'socktune server', address, openFiles, limits.length > 0 ? `; ${limits.join('; ')}` : '', definedOnly({ dataPorts }));
    // The default adjusts to the open-files limit by design: a few percent less is not worth a warning; a cap asked for, or halved, is.
    const capped = server.connectionCap < server.options.maxConnections;
    if (capped && (values['max-connections'] !== undefined || server.connectionCap < server.options.maxConnections / 2)) {
      io.err(
        `warning: data connections of all tests together are capped at ${server.connectionCap}, ` +
          `not ${server.options.maxConnections}: the open-files limit (${openFiles}) must leave room ` +
          'for the control port, new tests and their threads (raise it with ulimit -n)',
      );
    }
    const limiter = clientLogLimiter(io, log);
    server.on('test', (entry: TestLog) => {
      if (!limiter.admit(entry.client, entry.code ?? 'done')) return;
      if (entry.barrier !== undefined) {
        const { group, name, clients } = entry.barrier;
        io.err(
          printable(
            `barrier from ${entry.peer}: ${name} in ${group} of ${clients}: ${entry.outcome === 'done' ? 'released' : entry.error}`,
          ),
        );
      } else {
        const detail = entry.outcome === 'done' ? `in ${entry.bytesIn} B, out ${entry.bytesOut} B` : entry.error;
        io.err(printable(`test from ${entry.peer}: ${entry.service} (${entry.ioModel}) ${entry.outcome}: ${detail}`));
      }
      log?.('test', { ...entry });
    });
    await stopped;
    limiter.stop();
    await server.close();
    return 0;
  },
};
