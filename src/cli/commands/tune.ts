import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SocktuneError } from '../../core/errors.ts';
import type { LocalServer } from '../../bench/servers/control/local-server.ts';
import { currentAffinity, formatCpuList, pinProcess } from '../../core/affinity.ts';
import type { Objective } from '../../bench/tune/rank.ts';
import type { ScenarioResult, TunePlan, TuneProgress, Workload } from '../../bench/tune/run.ts';
import { COMMON_CLIENT_FLAGS, flagText, COMMON_OUTPUT_FLAGS, type Command, type Io, type Values } from '../command.ts';
import { DEFAULT_CONTROL_PORT, str, target as targetOf } from '../client-settings.ts';
import { exitCodeOf, NOTHING_MEASURED_EXIT, onInterrupt } from '../client-command.ts';
import { fitLine } from '../table.ts';
import { renderRanking, winnerLine } from '../tune-table.ts';
import { MAX_REQUEST_BYTES, MAX_SOCKET_BUFFER, parseCount, parseSeconds, parseSize } from '../units.ts';
import { IO_MODELS } from '../../transport/server/options.ts';

const WORKLOADS: readonly (Workload | 'mixed')[] = ['stream', 'rr', 'msg', 'mixed'];
const OBJECTIVES: Readonly<Record<Workload, readonly Objective[]>> = { stream: ['throughput'], rr: ['rps', 'p99'], msg: ['rps', 'p99'] };
const STREAM_SENDERS = ['sendfile', 'write'] as const;
const DEFAULT_SIZE: Readonly<Record<Workload, number>> = { stream: 128 * 1024, rr: 64, msg: 64 };
const DEFAULT_CONNS: Readonly<Record<Workload, number>> = { stream: 1, rr: 10, msg: 2 };

function choice<T extends string>(values: Values, flag: string, allowed: readonly T[], fallback: T): T {
  return choiceOf(str(values, flag) ?? fallback, `--${flag}`, allowed);
}

function choiceOf<T extends string>(text: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text))
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${flag} takes one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function list<T, F>(text: string | undefined, fallback: F, parse: (item: string) => T): T[] | F {
  return text === undefined ? fallback : text.split(',').map((item) => parse(item.trim()));
}

function progressPrinter(io: Io, quiet: boolean): (progress: TuneProgress) => void {
  let lastLine = '';
  return (progress) => {
    if (quiet) return;
    const width = 24;
    const filled = Math.round((progress.done / Math.max(1, progress.total)) * width);
    const line =
      `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${progress.done}/${progress.total} ` +
      `trials  ETA ${Math.ceil(progress.etaSec)}s  ${progress.label}`;
    if (io.isTty) {
      const shown = fitLine(line, io.columns === undefined ? undefined : io.columns - 1);
      process.stderr.write(`\r${shown.padEnd(lastLine.length)}${progress.done === progress.total ? '\n' : ''}`);
      lastLine = shown;
    } else if (progress.done === progress.total || progress.done % 10 === 0) {
      io.err(fitLine(line, io.columns));
    }
  };
}

function printScenario(io: Io, scenario: ScenarioResult, raw: boolean): void {
  const { objective, workload } = scenario;
  const unit = { stream: 'B writes', rr: 'B requests', msg: 'B messages' }[workload];
  io.out(`\n${workload}: ${scenario.size} ${unit} × ${scenario.conns} connection(s), objective ${objective}`);
  io.out(renderRanking(scenario, raw, io.columns));
  const recommendation = scenario.recommendation;
  if (!recommendation) return io.out('no configuration completed a trial');
  io.out(`\n${winnerLine(scenario, raw)}`);
  io.out('paste:');
  if (recommendation.createServer) io.out(`  createServer(${JSON.stringify(recommendation.createServer)})`);
  io.out(`  connect({ host, port, ...${JSON.stringify(recommendation.connect)} })`);
  io.out(`  ${recommendation.cli}`);
  for (const line of recommendation.advice) io.out(`  # ${line}`);
  for (const line of recommendation.sysctl) io.out(`  ${line}    # the kernel capped this buffer size`);
}

/**
 * On loopback the client and the embedded server share the machine: unpinned, each steals the
 * other's CPU and the spread of repeated runs grows. Each gets its own half of the CPUs this
 * process may use; with one CPU there is nothing to split.
 */
function pinApart(local: LocalServer, noPin: boolean): string {
  if (noPin) return 'off (--no-pin): client and server share every CPU';
  const cpus = currentAffinity();
  if (cpus.length < 2) return `off: only CPU ${formatCpuList(cpus)} is available`;
  const client = cpus.slice(0, Math.floor(cpus.length / 2));
  const server = cpus.slice(client.length);
  pinProcess(client);
  pinProcess(server, local.pid);
  return `client CPUs ${formatCpuList(client)}, server CPUs ${formatCpuList(server)} (--no-pin to share them)`;
}

export const tuneCommand: Command = {
  name: 'tune',
  summary: 'sweep buffer sizes, I/O models, no-delay and depth; rank them; print the config to paste',
  usage:
    'socktune tune [-c HOST] [--workload stream|rr|msg|mixed] [--size 64K] [--conns 1] ' +
    '[--objective ...] [--quick] [--budget 5m] [--report tune.html] [--json]',
  flags: {
    client: {
      help: 'tune against a running `socktune server` (default: start one on loopback); with --raw, HOST:PORT of any echo-like service',
      spec: { type: 'string', short: 'c' },
    },
    raw: {
      help: 'tune only the client side (buffers, Nagle, pipelining) against a service socktune does not control (rr workload)',
      spec: { type: 'boolean' },
    },
    port: { help: `control port with -c (default ${DEFAULT_CONTROL_PORT})`, spec: { type: 'string', short: 'p' } },
    'auth-token': COMMON_CLIENT_FLAGS['auth-token']!,
    workload: {
      help:
        'stream (bulk), rr (request/response), msg (small framed messages, echoed; also tunes ' +
        'write coalescing) or mixed (all three) (default stream)',
      spec: { type: 'string' },
    },
    size: {
      help: 'comma list: bytes per write (stream, default 128K), per request (rr, default 64) or per message (msg, default 64)',
      spec: { type: 'string' },
      value: '<bytes,...>',
    },
    conns: {
      help: 'comma list of connection counts (default 1 for stream, 10 for rr, 2 for msg)',
      spec: { type: 'string' },
      value: '<n,...>',
    },
    'io-model': {
      help:
        'comma list: sweep only these I/O models of loop, workers, thread-per-conn, io-uring ' +
        '(default: the first three; loop is always measured; msg skips io-uring)',
      spec: { type: 'string' },
      value: '<models,...>',
    },
    window: {
      help:
        'comma list: sweep only these buffer sizes, auto for the kernel autotuning (always ' +
        'measured, as the default), e.g. auto,256K,1M',
      spec: { type: 'string', short: 'w' },
      value: '<bytes,...>',
    },
    sender: {
      help:
        'how stream trials send: sendfile (default: zero-copy from the page cache, as stream -Z, so the client costs less than ' +
        'the server it measures) or write (from a buffer, as stream without -Z)',
      spec: { type: 'string' },
      value: '<sendfile|write>',
    },
    objective: { help: 'throughput (stream); rps or p99 (rr and msg, default rps); mixed uses each default', spec: { type: 'string' } },
    quick: { help: 'successive halving over a smaller grid: about a minute on 2 cores', spec: { type: 'boolean' } },
    budget: { help: 'time for the full grid, e.g. 5m', spec: { type: 'string' }, default: '5m' },
    'duration-per-trial': { help: 'seconds each trial measures (default 0.6 with --quick, 2 otherwise)', spec: { type: 'string' } },
    report: { help: 'HTML report path (default socktune-tune.html)', spec: { type: 'string' } },
    'no-report': { help: 'write no HTML report', spec: { type: 'boolean' } },
    'no-pin': {
      help:
        'on loopback, let client and embedded server share every CPU (by default each gets its own ' +
        'half, so they do not measure each other)',
      spec: { type: 'boolean' },
    },
    udp: {
      help:
        'UDP: the smallest receive buffer (SO_RCVBUF) that drops no datagram at -b; -w lists the sizes (default 16K to 8M), ' +
        '--size the datagram (default 1460), --conns the streams, -R the client receives',
      spec: { type: 'boolean', short: 'u' },
    },
    bitrate: {
      help: 'with -u: the rate each stream sends at, e.g. 500M (default 100M)',
      spec: { type: 'string', short: 'b' },
      value: '<bits/s>',
    },
    reverse: { help: "with -u: the server sends, and this client's receive buffer is swept", spec: { type: 'boolean', short: 'R' } },
    batch: {
      help:
        'with -u: the sender batches to sweep, most datagrams per system call, 1 to 64 (default 1,64: one each as iperf3, ' +
        'and as many as the kernel cuts): larger bursts need larger receive buffers',
      spec: { type: 'string' },
      value: '<list>',
    },
    ...COMMON_OUTPUT_FLAGS,
  },
  examples: [
    'npx socktune tune --quick',
    'socktune tune --workload rr --objective p99 --size 64,1K --conns 10',
    'socktune tune --quick --workload mixed',
    'socktune tune --quick --io-model loop,workers -w auto,256K,1M    # a smaller grid',
    'socktune tune -c 198.18.0.2 --budget 10m --report tune.html --json > tune.json',
    'socktune tune --raw -c 127.0.0.1:7000 --quick --conns 1,10    # client side against your own echo server',
    'socktune tune -u -b 500M    # UDP: the smallest receive buffer that drops nothing at 500 Mbit/s',
  ],
  async run(values, io) {
    if (values.udp && values.sender !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', "--sender chooses how TCP stream trials send; tune -u's sender is swept with --batch");
    if (values.udp) return (await import('./tune-udp.ts')).runUdpTune(values, io);
    for (const flag of ['bitrate', 'reverse', 'batch'])
      if (values[flag] !== undefined) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${flag} goes with tune -u`);
    const raw = values.raw === true;
    const workload = choice(values, 'workload', WORKLOADS, raw ? 'rr' : 'stream');
    if (raw && workload !== 'rr')
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--raw tunes request/response against an echo-like service: use it with --workload rr');
    if (raw && str(values, 'io-model') !== undefined)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        "--raw tunes only this client: the service's I/O model is not socktune's to choose, drop --io-model",
      );
    if (raw && str(values, 'client') === undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--raw needs the service to tune: -c HOST:PORT');
    if (workload === 'mixed' && values.objective !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', "--objective picks one workload's goal; --workload mixed uses each workload's default");
    const plans: TunePlan[] = (workload === 'mixed' ? (['stream', 'rr', 'msg'] as const) : [workload]).map((planned) => ({
      workload: planned,
      objective: choice(values, 'objective', OBJECTIVES[planned], OBJECTIVES[planned][0]!),
      sizes: list(str(values, 'size'), [DEFAULT_SIZE[planned]], (item) => parseSize(item, '--size', MAX_REQUEST_BYTES)),
      conns: list(str(values, 'conns'), [DEFAULT_CONNS[planned]], (item) => parseCount(item, '--conns', 1, 10_000)),
    }));
    const streamSender = choice(values, 'sender', STREAM_SENDERS, 'sendfile');
    if (values.sender !== undefined && !plans.some((plan) => plan.workload === 'stream'))
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--sender chooses how stream trials send: use it with --workload stream or mixed');
    const quick = values.quick === true;
    const trialText = str(values, 'duration-per-trial');
    const trialSec = trialText === undefined ? (quick ? 0.6 : 2) : parseSeconds(trialText, '--duration-per-trial');
    const budgetSec = parseSeconds(flagText(values, tuneCommand.flags, 'budget')!, '--budget');
    const { runTune } = await import('../../bench/tune/run.ts');
    const local =
      str(values, 'client') === undefined
        ? await (await import('../../bench/servers/control/local-server.ts')).LocalServer.start()
        : undefined;
    const target = local?.target ?? targetOf(values);
    const pinning = local
      ? pinApart(local, values['no-pin'] === true)
      : 'none (the server is elsewhere; pin it there with socktune server -A)';
    const human = values.json !== true;
    if (human && !values.quiet) {
      const against = local
        ? 'an embedded socktune server on loopback'
        : raw
          ? `the raw service ${target.host}:${target.port} (client side only)`
          : `${target.host}:${target.port}`;
      const sends = plans.some((plan) => plan.workload === 'stream')
        ? `; stream trials send with ${streamSender === 'sendfile' ? 'sendfile (zero-copy, as stream -Z)' : 'writes from a buffer'}`
        : '';
      const ringLeftOut =
        plans.some((plan) => plan.workload === 'msg') && (str(values, 'io-model') ?? '').split(',').includes('io-uring')
          ? "; msg's grid leaves io-uring out (it serves bytes, not messages)"
          : '';
      io.err(
        `tuning ${workload} against ${against} (${quick ? 'quick' : `full grid, budget ${budgetSec}s`}); ` +
          `CPU pinning: ${pinning}${sends}${ringLeftOut}`,
      );
    }
    let result;
    const interruption = onInterrupt(io);
    try {
      result = await runTune({
        target,
        targetLabel: local
          ? `embedded socktune server on ${target.host} (separate process)`
          : raw
            ? `raw service ${target.host}:${target.port}: only the client side was tuned (buffers, ` +
              "Nagle, pipelining); its server is not socktune's to configure"
            : `socktune server ${target.host}:${target.port}`,
        pinning,
        workload,
        raw,
        plans,
        quick,
        ioModels: list(str(values, 'io-model'), undefined, (item) => choiceOf(item, '--io-model', IO_MODELS)),
        bufferSizes: list(str(values, 'window'), undefined, (item) =>
          item === 'auto' ? undefined : parseSize(item, '--window', MAX_SOCKET_BUFFER),
        ),
        budgetSec,
        trialSec,
        streamSender,
        onProgress: progressPrinter(io, values.quiet === true),
        interrupt: interruption.signal,
      });
    } finally {
      interruption.dispose();
      await local?.stop();
    }
    const measuredNothing = result.scenarios.every((scenario) => scenario.recommendation === null);
    const exitCode = interruption.received() === undefined && measuredNothing ? NOTHING_MEASURED_EXIT : exitCodeOf(interruption.received());
    const reportPath = values['no-report'] ? undefined : resolve(str(values, 'report') ?? 'socktune-tune.html');
    if (reportPath) await writeFile(reportPath, (await import('../../bench/tune/report/html.ts')).renderTuneReport(result));
    if (!human) {
      io.out(JSON.stringify({ ...result, report: reportPath ?? null }, null, 2));
      return exitCode;
    }
    for (const scenario of result.scenarios) printScenario(io, scenario, raw);
    for (const warning of result.warnings) io.err(`warning: ${warning}`);
    io.out(
      `\n${result.scenarios.reduce((n, s) => n + s.trials.length, 0)} trials in ` +
        `${result.durationSec}s${result.interrupted ? ' (interrupted)' : ''}${reportPath ? `; report: ${reportPath}` : ''}`,
    );
    return exitCode;
  },
};
