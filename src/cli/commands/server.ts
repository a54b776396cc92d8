import { BenchServer, type TestLog } from '../../bench/bench-server.ts';
import { createSockperfServer, SOCKPERF_DEFAULT_PORT } from '../../protocols/sockperf/server.ts';
import { IPERF3_DEFAULT_PORT, Iperf3Server, type Iperf3TestLog } from '../../protocols/iperf3/server.ts';
import { SocktuneError } from '../../core/errors.ts';
import type { EventEmitter } from 'node:events';
import type { ServerAddress } from '../../transport/server.ts';
import type { Command, Io, Values } from '../command.ts';
import { DEFAULT_CONTROL_PORT, ioModel, str } from '../client-settings.ts';
import { parseCount } from '../units.ts';

export const serverCommand: Command = {
  name: 'server',
  summary: 'serve stream, rr and tune tests to socktune clients (several at once)',
  usage: 'socktune server [-p 5210] [--bind ADDR | --unix PATH] [--one-off] [--max-tests N]',
  flags: {
    port: { help: `control port (default ${DEFAULT_CONTROL_PORT}; 0 picks a free one)`, spec: { type: 'string', short: 'p' } },
    bind: { help: 'address to listen on (default 127.0.0.1)', spec: { type: 'string', short: 'B' } },
    unix: { help: 'listen on a Unix-domain socket path instead', spec: { type: 'string' } },
    'one-off': { help: 'exit after one test', spec: { type: 'boolean', short: '1' } },
    'max-tests': { help: 'tests at once before new clients are refused (default 16)', spec: { type: 'string' } },
    iperf3: { help: `answer stock iperf3 clients (TCP: -R, --bidir, -P, -n, -k, -l, -w, -N, -O, -J, --get-server-output) instead, on port ${IPERF3_DEFAULT_PORT} unless -p; several tests at once`, spec: { type: 'boolean' } },
    sockperf: { help: `answer stock sockperf clients (pp, ul, tp) instead, on port ${SOCKPERF_DEFAULT_PORT} unless -p`, spec: { type: 'boolean' } },
    'io-model': { help: '--sockperf: loop, workers or thread-per-conn (default loop)', spec: { type: 'string' } },
    workers: { help: '--sockperf: threads for --io-model workers (default: CPUs)', spec: { type: 'string' } },
    blocking: { help: '--sockperf with thread-per-conn: blocking recv/send in each thread', spec: { type: 'boolean' } },
  },
 examples: ['socktune server', 'socktune server -p 6000 --bind 0.0.0.0', 'socktune server --one-off -p 0', 'socktune server --iperf3 --max-tests 8    # then: iperf3 -c 127.0.0.1 -R', 'socktune server --sockperf --io-model workers    # then: sockperf pp --tcp -i 127.0.0.1 -p 11111'],
  async run(values, io) {
    if (values.sockperf && values.iperf3) throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose one of --iperf3 and --sockperf');
    if (values.sockperf) return serveSockperf(values, io);
    if (values.iperf3) return serveIperf3(values, io);
    const port = str(values, 'port');
    const unix = str(values, 'unix');
    const maxTests = str(values, 'max-tests');
    const server = new BenchServer({
      host: str(values, 'bind') ?? '127.0.0.1',
      port: port === undefined ? DEFAULT_CONTROL_PORT : parseCount(port, '--port', 0, 65535),
      ...(unix === undefined ? {} : { path: unix }),
      ...(maxTests === undefined ? {} : { maxTests: parseCount(maxTests, '--max-tests', 1, 10_000) }),
      oneOff: values['one-off'] === true,
    });
    const address = await server.listen();
    io.out(`socktune server listening on ${describeAddress(address)}`);
    server.on('test', (log: TestLog) => {
      const detail = log.outcome === 'done' ? `in ${log.bytesIn} B, out ${log.bytesOut} B` : log.error;
      io.err(`test from ${log.peer}: ${log.service} (${log.ioModel}) ${log.outcome}: ${detail}`);
    });
    await untilStopped(server);
    await server.close();
    return 0;
  },
};

async function serveSockperf(values: Values, io: Io): Promise<number> {
  const port = str(values, 'port');
  const workers = str(values, 'workers');
  const server = createSockperfServer({
    host: str(values, 'bind') ?? '127.0.0.1',
    port: port === undefined ? SOCKPERF_DEFAULT_PORT : parseCount(port, '--port', 0, 65535),
    ioModel: ioModel(values),
    ...(workers === undefined ? {} : { workers: parseCount(workers, '--workers', 1, 256) }),
    blocking: values.blocking === true,
  });
  const address = await server.listen();
  io.out(`socktune sockperf server listening on ${describeAddress(address)} (${server.options.ioModel}${server.options.blocking ? ', blocking' : ''})`);
  await untilStopped();
  const { errors } = server.metrics();
  await server.close();
  const problems = Object.entries(errors);
  if (problems.length > 0) io.err(`connections closed on errors: ${problems.map(([code, count]) => `${code} ×${count}`).join(', ')}`);
  return 0;
}

async function serveIperf3(values: Values, io: Io): Promise<number> {
  const port = str(values, 'port');
  const maxTests = str(values, 'max-tests');
  const server = new Iperf3Server({
    host: str(values, 'bind') ?? '127.0.0.1',
    port: port === undefined ? IPERF3_DEFAULT_PORT : parseCount(port, '--port', 0, 65535),
    ...(maxTests === undefined ? {} : { maxTests: parseCount(maxTests, '--max-tests', 1, 10_000) }),
  });
  const address = await server.listen();
  io.out(`socktune iperf3 server listening on ${describeAddress(address)} (up to ${server.options.maxTests} tests at once)`);
  server.on('test', (entry: Iperf3TestLog) => {
    io.err(`iperf3 test from ${entry.peer}: ${entry.outcome}${entry.error ? `: ${entry.error}` : ''}`);
    if (entry.summary) io.err(entry.summary.trimEnd());
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
