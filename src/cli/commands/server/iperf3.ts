import { readFile } from 'node:fs/promises';
import { MAX_TEST_DURATION_MS } from '../../../bench/control/control-protocol.ts';
import { SocktuneError } from '../../../core/errors.ts';
import { definedOnly } from '../../../core/validate.ts';
import {
  IPERF3_DEFAULT_PORT,
  IPERF3_SERVER_DEFAULTS as DEFAULTS,
  describeIperf3Test,
  Iperf3Server,
  type Iperf3ServerOptions,
  type Iperf3TestLog,
} from '../../../bench/servers/iperf3/iperf3-server.ts';
import { IPERF3_AUTH_DEFAULTS } from '../../../bench/servers/iperf3/authenticator.ts';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import type { Command, Io, Values } from '../../command.ts';
import { str } from '../../client-settings.ts';
import { printable } from '../../../core/printable.ts';
import { describeSize } from '../../units.ts';
import {
  announce,
  clientLogLimiter,
  commonServerFlags,
  describeRate,
  jsonLog,
  listenPort,
  maxSendRate,
  ipv6Prefix,
  prepareProcess,
  untilStopped,
  type JsonLog,
} from './common.ts';
import { count, millis, size } from './flag-values.ts';

export const iperf3ServerCommand: Command = {
  name: 'server iperf3',
  summary:
    'answer stock iperf3 clients, TCP and UDP (-u, -R, --bidir, -P, -b, -n, -k, -l, -w, -N, -O, -J, --get-server-output); ' +
    'several tests at once',
  usage:
    `socktune server iperf3 [-p ${IPERF3_DEFAULT_PORT}] [--bind ADDR] [--rsa-private-key-path ` +
    'KEY --authorized-users-path USERS] [limits] [--json]',
  flags: {
    ...commonServerFlags(IPERF3_DEFAULT_PORT),
    'max-tests': {
      help: `tests at once before new clients are told the server is busy (default ${DEFAULTS.maxTests})`,
      spec: { type: 'string' },
    },
    'max-per-client': { help: `tests at once from one client address (default ${DEFAULTS.maxTestsPerClient})`, spec: { type: 'string' } },
    'max-duration': { help: `longest a test may last in seconds (default ${DEFAULTS.maxDurationMs / 1000})`, spec: { type: 'string' } },
    'max-socket-buffer': {
      help: `largest -w a client may ask for (default ${describeSize(DEFAULTS.maxWindow)})`,
      spec: { type: 'string' },
    },
    'max-chunk': { help: `largest -l a client may ask for (default ${describeSize(DEFAULTS.maxBlockLength)})`, spec: { type: 'string' } },
    'udp-rcvbuf': {
      help: "SO_RCVBUF of the UDP port every iperf3 -u test shares (default: the kernel's); a test's -w only grows it",
      spec: { type: 'string' },
      value: '<bytes>',
    },
    'max-streams': {
      help: `most data streams one test may open, -P × (2 with --bidir) (default ${DEFAULTS.maxStreams})`,
      spec: { type: 'string' },
    },
    'max-total-streams': {
      help:
        'data streams of every test together; a test that would go over is told the server is busy ' +
        `(default ${DEFAULTS.maxTotalStreams})`,
      spec: { type: 'string' },
    },
    'max-streams-per-client': {
      help:
        "data streams of one client address's tests together, so that one address cannot take them all " +
        `(default ${DEFAULTS.maxStreamsPerClient})`,
      spec: { type: 'string' },
    },
    'max-connections': { help: `connections of any kind open at once (default ${DEFAULTS.maxConnections})`, spec: { type: 'string' } },
    'max-per-ip': {
      help: `connections at once from one client address (default ${DEFAULTS.maxConnectionsPerIp})`,
      spec: { type: 'string' },
    },
    'rsa-private-key-path': {
      help: 'the PEM private key iperf3 clients encrypt their credentials for (iperf3 -s --rsa-private-key-path)',
      spec: { type: 'string' },
    },
    'authorized-users-path': {
      help: 'the users file (user,sha256 of "{user}password" per line), as iperf3 -s --authorized-users-path',
      spec: { type: 'string' },
    },
    'time-skew-threshold': {
      help:
        "seconds a client's credentials may be old or early (default " +
        `${IPERF3_AUTH_DEFAULTS.timeSkewThresholdSec}), as iperf3 -s --time-skew-threshold`,
      spec: { type: 'string' },
    },
  },
  refusals: {
    'auth-token':
      "iperf3 clients cannot answer socktune's challenge: they authenticate with RSA, as with " +
      'iperf3 -s; give --rsa-private-key-path and --authorized-users-path',
  },
  examples: [
    'socktune server iperf3 --max-tests 8    # then: iperf3 -c 127.0.0.1 -R',
    "socktune server iperf3 --rsa-private-key-path key.pem --authorized-users-path users.csv    # iperf3's own authentication",
    'socktune server --iperf3 -p 5202    # the same server, in the older spelling',
  ],
  async run(values, io) {
    const log = jsonLog(values, io);
    const openFiles = prepareProcess(values);
    const rate = maxSendRate(values).maxSendRate;
    const server = new Iperf3Server({
      ...listenPort(values, IPERF3_DEFAULT_PORT),
      ...definedOnly({
        maxTests: count(values, 'max-tests', 10_000),
        maxTestsPerClient: count(values, 'max-per-client', 10_000),
        maxDurationMs: millis(values, 'max-duration', 1000, MAX_TEST_DURATION_MS),
        maxWindow: size(values, 'max-socket-buffer', 2 ** 31 - 1),
        maxBlockLength: size(values, 'max-chunk', 16 * 1024 * 1024),
        udpReceiveBufferSize: size(values, 'udp-rcvbuf', 2 ** 31 - 1),
        maxStreams: count(values, 'max-streams', 256),
        maxTotalStreams: count(values, 'max-total-streams', 10_000_000),
        maxStreamsPerClient: count(values, 'max-streams-per-client', 10_000_000),
        maxConnections: count(values, 'max-connections', 10_000_000),
        maxConnectionsPerIp: count(values, 'max-per-ip', 10_000_000),
        ...ipv6Prefix(values),
        sendBudget: rate === undefined ? undefined : new SendBudget(rate),
        auth: await iperf3Auth(values),
      }),
    });
    const stopped = untilStopped();
    const address = await server.listen();
    const { maxTests, maxTestsPerClient } = server.options;
    const detail = [
      `up to ${maxTests} tests at once, ${maxTestsPerClient} per client`,
      values['rsa-private-key-path'] === undefined ? '' : 'clients must authenticate (RSA)',
      rate === undefined ? '' : `sends at most ${describeRate(rate)}`,
    ].filter(Boolean);
    announce(io, log, 'socktune iperf3 server', address, openFiles, `; ${detail.join('; ')}`);
    const tests = testLog(io, log);
    server.on('test', tests.onTest);
    await stopped;
    tests.stop();
    await server.close();
    return 0;
  },
};

/**
 * Each test's outcome (a finished test's streams after it); refusals and failures cost a client one
 * connection each, so a client's entries are rate-limited (LogLimiter).
 */
function testLog(io: Io, log: JsonLog): { onTest: (entry: Iperf3TestLog) => void; stop: () => void } {
  const limiter = clientLogLimiter(io, log);
  const onTest = (entry: Iperf3TestLog): void => {
    if (!limiter.admit(entry.client, entry.code ?? entry.outcome)) return;
    io.err(printable(`iperf3 test from ${entry.peer}: ${entry.outcome}${entry.error ? `: ${entry.error}` : ''}`));
    if (entry.figures) io.err(describeIperf3Test(entry.figures).trimEnd());
    const { figures } = entry;
    log?.('test', {
      peer: entry.peer,
      client: entry.client,
      outcome: entry.outcome,
      ...(entry.code ? { code: entry.code } : {}),
      ...(entry.error ? { error: entry.error } : {}),
      ...(figures
        ? {
            bytesIn: figures.bytesIn,
            bytesOut: figures.bytesOut,
            seconds: figures.seconds,
            reverse: figures.reverse,
            bidirectional: figures.bidirectional,
            streams: figures.streams,
            ...(figures.udpReceiveBufferDrops === undefined ? {} : { udpReceiveBufferDrops: figures.udpReceiveBufferDrops }),
          }
        : {}),
    });
  };
  return { onTest, stop: () => limiter.stop() };
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
