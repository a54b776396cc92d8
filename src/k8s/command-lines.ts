import { MAX_TEST_DURATION_MS } from '../bench/control/control-protocol.ts';
import { DRAIN_GRACE_MS } from '../bench/engines/data-session.ts';
import { formatSizeFlag } from '../bench/results/format.ts';
import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import { dataPortsOf, RENDER_DEFAULTS, serverShapeOf, type RenderOptions, type Workload } from './render-options.ts';
import { serverLimitArgs } from './server-limits.ts';

/** The command lines of the test's pods (after the `socktune` entrypoint), and the names they reach each other by. */

/** Where a client finds the servers: the Service, and each server pod's own name under it. */
export interface ServerNames {
  /** The Service (headless, except for `--raw` without `--headless`) and the StatefulSet that governs the pods. */
  serviceName: string;
  /** Server k's DNS name, `<statefulset>-k.<service>`: its pod's stable name under the headless Service. */
  hosts: string[];
}

/** The names of M servers of one test: the StatefulSet's pods are `<name>-0` to `<name>-(M-1)`. */
export function serverNames(serviceName: string, servers: number): ServerNames {
  return { serviceName, hosts: Array.from({ length: servers }, (_, index) => `${serviceName}-${index}.${serviceName}`) };
}

/** The variable the Job controller sets in every pod of an Indexed Job, and the kubelet expands in args. */
const COMPLETION_INDEX = '$(JOB_COMPLETION_INDEX)';

export function seconds(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/** The service a raw client drives: the bare port that answers its workload. */
function rawService(workload: Workload, echo: boolean): string {
  if (workload === 'stream') return 'discard';
  if (workload === 'msg') return echo ? 'msg-echo' : 'msg-sink';
  return 'echo';
}

/** The workload's own flags, spelled as the client command takes them. */
function workloadArgs(options: RenderOptions): string[] {
  const args: string[] = [];
  const { workload, size, connections, depth } = options;
  if (size !== undefined) args.push(workload === 'stream' ? '-l' : '--size', formatSizeFlag(size));
  if (connections !== undefined) args.push(workload === 'stream' ? '-P' : '-C', String(connections));
  if (depth !== undefined) args.push('--depth', String(depth));
  if (options.rate !== undefined) args.push('--rate', String(options.rate));
  if (options.echo === true) args.push('--echo');
  return args;
}

/** Socket options for one side: in raw mode the server takes -w and the I/O model itself; otherwise the client asks for them. */
function socketArgs(options: RenderOptions, side: 'server' | 'client'): string[] {
  const raw = options.raw === true;
  const args: string[] = [];
  if (options.window !== undefined) args.push('-w', formatSizeFlag(options.window));
  if (side === 'client') {
    if (options.sendBuffer !== undefined) args.push('--sndbuf', formatSizeFlag(options.sendBuffer));
    if (options.receiveBuffer !== undefined) args.push('--rcvbuf', formatSizeFlag(options.receiveBuffer));
    if (options.nagle === true) args.push('--nagle');
  }
  if (side === (raw ? 'server' : 'client')) {
    if (options.ioModel !== undefined) args.push('--io-model', options.ioModel);
    if (options.workers !== undefined) args.push('--workers', String(options.workers));
  }
  return args;
}

/** The server container's command line. */
export function serverArgs(options: RenderOptions): string[] {
  const port = String(options.port ?? RENDER_DEFAULTS.port);
  const bind = options.bind ?? RENDER_DEFAULTS.bind;
  const limits = serverLimitArgs(serverShapeOf(options));
  if (options.raw === true) {
    const service = rawService(options.workload, options.echo === true);
    return ['server', 'service', service, '--bind', bind, '-p', port, '--json', ...socketArgs(options, 'server'), ...limits];
  }
  const testSec =
    (options.durationSec ?? RENDER_DEFAULTS.durationSec) + (options.omitSec ?? RENDER_DEFAULTS.omitSec) + DRAIN_GRACE_MS / 1000;
  const dataPorts = dataPortsOf(options);
  const barrierSec = options.barrierTimeoutSec ?? RENDER_DEFAULTS.barrierTimeoutSec;
  return [
    'server',
    '--bind',
    bind,
    '-p',
    port,
    '--json',
    ...limits,
    // The server ends a test, and a barrier's wait, at --max-duration.
    ...(Math.max(testSec, barrierSec) > CONTROL_SERVER_DEFAULTS.maxTestDurationMs / 1000
      ? ['--max-duration', String(Math.min(MAX_TEST_DURATION_MS / 1000, Math.ceil(Math.max(testSec, barrierSec)) + 60))]
      : []),
    ...(dataPorts === undefined ? [] : ['--data-ports', `${dataPorts.first}-${dataPorts.last}`]),
  ];
}

/**
 * Every client container's command line. Through the control server, or `--raw --headless`, client
 * i reaches server i mod M: `-c` lists every server's own name and `--pick` takes the pod's completion
 * index. A `--raw` ClusterIP client names the Service and lets kube-proxy pick a pod per connection.
 */
/**
 * How the clients start together: through the control server at a start barrier on server 0 (the
 * group named by the test id, all N clients, each measuring its clock against that server's); bare
 * ports have no barrier, so a `--raw` test starts at a fixed time.
 */
export type ClientStart = { barrier: { group: string; clients: number } } | { startAt: number };

export function clientArgs(options: RenderOptions, names: ServerNames, start: ClientStart): string[] {
  const port = String(options.port ?? RENDER_DEFAULTS.port);
  const raw = options.raw === true;
  const pick = names.hosts.length > 1 ? ['--pick', COMPLETION_INDEX] : [];
  let target: string[];
  if (raw && options.headless !== true) target = ['--raw', '-c', `${names.serviceName}:${port}`];
  else if (raw) target = ['--raw', '-c', names.hosts.map((host) => `${host}:${port}`).join(','), ...pick];
  else target = ['-c', names.hosts.join(','), '-p', port, ...pick];
  return [
    options.workload,
    ...target,
    '-t',
    seconds(options.durationSec ?? RENDER_DEFAULTS.durationSec),
    ...(options.omitSec ? ['--omit', seconds(options.omitSec)] : []),
    '-i',
    seconds(options.intervalSec ?? RENDER_DEFAULTS.intervalSec),
    ...workloadArgs(options),
    ...socketArgs(options, 'client'),
    ...startArgs(options, names, start),
    // One JSON line per interval, then the result as the log's last line.
    '--ndjson',
    ...(options.extraClientArgs ?? []),
  ];
}

function startArgs(options: RenderOptions, names: ServerNames, start: ClientStart): string[] {
  if ('startAt' in start)
    return [
      '--start-at',
      String(start.startAt),
      '--start-late-tolerance',
      seconds(options.startLateToleranceSec ?? RENDER_DEFAULTS.startLateToleranceSec),
    ];
  return [
    '--barrier',
    `${names.hosts[0]!}:${options.port ?? RENDER_DEFAULTS.port}`,
    '--barrier-clients',
    String(start.barrier.clients),
    '--barrier-group',
    start.barrier.group,
    '--barrier-timeout',
    seconds(options.barrierTimeoutSec ?? RENDER_DEFAULTS.barrierTimeoutSec),
  ];
}
