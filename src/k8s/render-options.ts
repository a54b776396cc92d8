import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import { SocktuneError } from '../core/errors.ts';
import { boolean, integer, nonEmptyString, number, oneOf, validateFields, type FieldCheck } from '../core/validate.ts';
import { IO_MODELS, type IoModel } from '../transport/server/options.ts';
import {
  ARCHES,
  checkArchSelectors,
  DNS_LABEL,
  DNS_SUBDOMAIN,
  matches,
  resources,
  runAsUser,
  selector,
  stringList,
  type Arch,
} from './field-checks.ts';
import { serverLimits, testsAtOnce, type ServerShape } from './server-limits.ts';

export const WORKLOADS = ['rr', 'crr', 'stream', 'msg'] as const;
export type Workload = (typeof WORKLOADS)[number];
export const ANTI_AFFINITIES = ['required', 'preferred', 'none'] as const;
export type AntiAffinity = (typeof ANTI_AFFINITIES)[number];

export interface PodResources {
  /** CPU request (and limit, unless `cpuLimit` is false), a Kubernetes quantity: `1`, `500m`. */
  cpu: string;
  /** Memory request and limit, a Kubernetes quantity: `512Mi`, `1Gi`. */
  memory: string;
}

/** A range of ports, both ends included. */
export interface PortRange {
  first: number;
  last: number;
}

export interface RenderOptions {
  /** The client command every client pod runs. */
  workload: Workload;
  /** The image; its entrypoint must be `socktune` (`npm run build:image` builds one FROM scratch). */
  image: string;
  /** Client pods: the Job's completions and parallelism. @default 2 */
  clients?: number;
  /** Server pods: the StatefulSet's replicas; client i reaches server i mod M. @default 1 */
  servers?: number;
  /** Seconds each client measures (`-t`). @default 10 */
  durationSec?: number;
  /** Warm-up seconds left out of the summary (`--omit`). @default 0 */
  omitSec?: number;
  /** Seconds per interval (`-i`); merge lines the clients' intervals up by it. @default 1 */
  intervalSec?: number;
  /** Bytes per request or message (`--size`), per write for stream (`-l`). @default the command's own */
  size?: number;
  /** Connections per client: `-C` (crr: transactions in flight; stream: `-P`). @default the command's own, 1 */
  connections?: number;
  /** Requests in flight per connection: rr `--depth`, msg `--echo --depth`. @default the command's own */
  depth?: number;
  /** rr only: open loop at this many requests/s per client (`--rate`). */
  rate?: number;
  /** msg only: echoed messages (`--echo`) instead of one way. @default false */
  echo?: boolean;
  /** SO_SNDBUF and SO_RCVBUF in bytes on both ends (`-w`). */
  window?: number;
  /** SO_SNDBUF in bytes (`--sndbuf`, over `window`). */
  sendBuffer?: number;
  /** SO_RCVBUF in bytes (`--rcvbuf`, over `window`). */
  receiveBuffer?: number;
  /** Leave Nagle on (`--nagle`). @default false */
  nagle?: boolean;
  /** The server's I/O model for each test (`--io-model`). @default 'loop' */
  ioModel?: IoModel;
  /** Threads for `ioModel: 'workers'` (`--workers`). */
  workers?: number;
  /**
   * Bare service ports behind a ClusterIP Service, kube-proxy or IPVS spreading every connection,
   * driven by `--raw` clients: client-side numbers only. Without it, the control server behind a
   * headless Service: a control connection's data connections must reach the pod that accepted it.
   * @default false
   */
  raw?: boolean;
  /** With `raw`: a headless Service, client i on server i mod M, instead of a ClusterIP. @default false */
  headless?: boolean;
  /** The server port, and the Service's. @default 5210 */
  port?: number;
  /** The address servers listen on (`::` on an IPv6-only cluster). @default '0.0.0.0' */
  bind?: string;
  /**
   * A NetworkPolicy that lets the test's client pods, and nothing else, reach its server pods: on
   * the port and, for the control server, on `dataPorts`, TCP and UDP. @default false
   */
  networkPolicy?: boolean;
  /**
   * The ports the control server's data listeners bind (`socktune server --data-ports`), given to
   * the servers when set or with `networkPolicy`. @default 20000 to 20999, more when a server may
   * run more than 1000 tests at once
   */
  dataPorts?: PortRange;
  /** The namespace of every object; unset, kubectl's current one. */
  namespace?: string;
  /** Node labels every pod must match. */
  nodeSelector?: Readonly<Record<string, string>>;
  /** Node labels the server pods must match, over `nodeSelector`. */
  serverNodeSelector?: Readonly<Record<string, string>>;
  /** Node labels the client pods must match, over `nodeSelector`. */
  clientNodeSelector?: Readonly<Record<string, string>>;
  /** The image's architecture, as the node label `kubernetes.io/arch` every pod must match; `any`: no such selector. @default 'amd64' */
  arch?: Arch;
  /** Keep clients off nodes that run a server of the test: `required`, `preferred` or `none`. @default 'required' */
  antiAffinity?: AntiAffinity;
  /** The UID (and GID) the pods run as; null leaves both to the image and the platform (OpenShift assigns its own). @default 65532 */
  runAsUser?: number | null;
  /**
   * Seconds each client waits at the start barrier on server 0 for all the others (`--barrier-timeout`):
   * time to apply, schedule, pull and start every pod. Not with `raw` (bare ports have no barrier). @default 600
   */
  barrierTimeoutSec?: number;
  /** `raw` only: seconds from rendering to the clients' common start (`--start-at`): time to apply, schedule and pull. @default 60 */
  startMarginSec?: number;
  /** `raw` only: seconds a client may start after `--start-at` before it refuses to run (`--start-late-tolerance`). @default 1 */
  startLateToleranceSec?: number;
  /** Each client pod's resources. @default { cpu: '1', memory: '512Mi' } */
  clientResources?: PodResources;
  /** Each server pod's resources. @default { cpu: '2', memory: '1Gi' } */
  serverResources?: PodResources;
  /** A CPU limit equal to the request (Guaranteed QoS, whole CPUs under the static CPU manager); false: request only. @default true */
  cpuLimit?: boolean;
  /** Seconds the finished Job and its pods (and their logs) are kept. @default 3600 */
  ttlSecondsAfterFinished?: number;
  /** Seconds the Job may run before Kubernetes ends it. @default margin + omit + time + 120 */
  activeDeadlineSeconds?: number;
  /** A Secret in the namespace whose key `token` becomes SOCKTUNE_AUTH_TOKEN of servers and clients. */
  authSecret?: string;
  /** More flags for every client command line, appended as given (`-R`, `--verify`, ...). */
  extraClientArgs?: readonly string[];
}

export const RENDER_DEFAULTS = Object.freeze({
  clients: 2,
  servers: 1,
  durationSec: 10,
  omitSec: 0,
  intervalSec: 1,
  connections: 1,
  echo: false,
  nagle: false,
  raw: false,
  headless: false,
  port: CONTROL_SERVER_DEFAULTS.port,
  bind: '0.0.0.0',
  networkPolicy: false,
  /** The data ports start here: below the kernel's default ephemeral range (32768-60999), so no outgoing connection takes one. */
  firstDataPort: 20_000,
  /** The default range holds at least this many ports. */
  dataPortCount: 1000,
  arch: 'amd64',
  antiAffinity: 'required',
  /** 65532: the `nonroot` user of distroless images, also in the image's /etc/passwd. */
  runAsUser: 65_532,
  barrierTimeoutSec: 600,
  startMarginSec: 60,
  startLateToleranceSec: 1,
  clientResources: Object.freeze({ cpu: '1', memory: '512Mi' }),
  serverResources: Object.freeze({ cpu: '2', memory: '1Gi' }),
  cpuLimit: true,
  ttlSecondsAfterFinished: 3600,
  /** Added to the margin and the test's own time for the Job's deadline: connect, drain, report. */
  deadlineSlackSec: 120,
} as const);

const bufferSize = integer(1, 2 ** 31 - 1);
// With every capability dropped a non-root server cannot bind below 1024.
const unprivilegedPort = integer(1024, 65_535);

const portRange: FieldCheck = (value) => {
  const { first, last, ...rest } = (value ?? {}) as Record<string, unknown>;
  return typeof value === 'object' &&
    Object.keys(rest).length === 0 &&
    unprivilegedPort(first) === undefined &&
    unprivilegedPort(last) === undefined &&
    (first as number) <= (last as number)
    ? undefined
    : '{ first, last } ports from 1024 to 65535, first <= last';
};

const RENDER_FIELDS = {
  workload: oneOf(WORKLOADS),
  image: nonEmptyString,
  clients: integer(1, 10_000),
  servers: integer(1, 1000),
  durationSec: number(0.001, 3600),
  omitSec: number(0, 3600),
  intervalSec: number(0.001, 3600),
  size: integer(1, 64 * 1024 * 1024),
  connections: integer(1, 10_000),
  depth: integer(1, 100_000),
  rate: integer(1, 10_000_000),
  echo: boolean,
  window: bufferSize,
  sendBuffer: bufferSize,
  receiveBuffer: bufferSize,
  nagle: boolean,
  ioModel: oneOf(IO_MODELS),
  workers: integer(1, 65_536),
  raw: boolean,
  headless: boolean,
  port: unprivilegedPort,
  bind: nonEmptyString,
  networkPolicy: boolean,
  dataPorts: portRange,
  namespace: matches(DNS_LABEL, 'a namespace name (RFC 1123 label)'),
  nodeSelector: selector,
  serverNodeSelector: selector,
  clientNodeSelector: selector,
  arch: oneOf(ARCHES),
  antiAffinity: oneOf(ANTI_AFFINITIES),
  runAsUser,
  barrierTimeoutSec: number(1, 3600),
  startMarginSec: number(1, 86_400),
  startLateToleranceSec: number(0, 3600),
  clientResources: resources,
  serverResources: resources,
  cpuLimit: boolean,
  ttlSecondsAfterFinished: integer(0, 30 * 86_400),
  activeDeadlineSeconds: integer(1, 30 * 86_400),
  authSecret: matches(DNS_SUBDOMAIN, 'a Secret name (RFC 1123 subdomain)'),
  extraClientArgs: stringList,
} as const;

/** Names a render option in an error message. */
export type RenderOptionNamer = (key: keyof RenderOptions) => string;

/** What the server limits are computed from. */
export function serverShapeOf(options: RenderOptions): ServerShape {
  const raw = options.raw === true;
  return {
    clients: options.clients ?? RENDER_DEFAULTS.clients,
    servers: options.servers ?? RENDER_DEFAULTS.servers,
    evenSpread: !raw || options.headless === true,
    bare: raw,
    connections: options.connections ?? RENDER_DEFAULTS.connections,
    connectionPerTransaction: options.workload === 'crr',
    ioModel: options.ioModel ?? 'loop',
    ...(options.workers === undefined ? {} : { workers: options.workers }),
  };
}

/** The data ports the servers get (`--data-ports`), or undefined when they bind any port. */
export function dataPortsOf(options: RenderOptions): PortRange | undefined {
  if (options.raw === true || (options.dataPorts === undefined && options.networkPolicy !== true)) return undefined;
  if (options.dataPorts !== undefined) return options.dataPorts;
  const count = Math.max(RENDER_DEFAULTS.dataPortCount, testsAtOnce(serverShapeOf(options)));
  return { first: RENDER_DEFAULTS.firstDataPort, last: RENDER_DEFAULTS.firstDataPort + count - 1 };
}

/**
 * Checks every option (SOCKTUNE_ERR_INVALID_OPTION naming it), then the combinations that mean
 * nothing. `nameOf` names an option in the message: `options.depth` here, `--depth` for the CLI.
 */
export function validateRenderOptions(options: RenderOptions, nameOf: RenderOptionNamer = (key) => `options.${key}`): void {
  validateFields(options, RENDER_FIELDS, (key) => nameOf(key as keyof RenderOptions));
  const { workload } = options;
  const refuse = (message: string): never => {
    throw new SocktuneError('SOCKTUNE_ERR_INVALID_OPTION', message);
  };
  const [depth, echo, rate, workers, ioModel, raw] = (['depth', 'echo', 'rate', 'workers', 'ioModel', 'raw'] as const).map(nameOf);
  if (options.depth !== undefined && (workload === 'crr' || workload === 'stream'))
    refuse(`${depth} is for rr and msg ${echo}; a ${workload} client has no requests in flight to deepen`);
  if (options.depth !== undefined && workload === 'msg' && options.echo !== true)
    refuse(`${depth} is for msg with ${echo}: one-way messages are not answered`);
  if (options.rate !== undefined && workload !== 'rr') refuse(`${rate} is for rr (open loop)`);
  if (options.echo === true && workload !== 'msg') refuse(`${echo} is for msg`);
  if (options.workers !== undefined && options.ioModel !== 'workers') refuse(`${workers} needs ${ioModel} 'workers'`);
  if (options.headless === true && options.raw !== true)
    refuse(`${nameOf('headless')} is for ${raw}: the control server is always behind a headless Service`);
  if (options.authSecret !== undefined && options.raw === true)
    refuse(`${nameOf('authSecret')}: a bare service port (${raw}) has no authentication; drop one of them`);
  if (options.raw === true && options.barrierTimeoutSec !== undefined)
    refuse(`${nameOf('barrierTimeoutSec')}: bare service ports (${raw}) have no start barrier; their clients start at a fixed time`);
  for (const key of ['startMarginSec', 'startLateToleranceSec'] as const)
    if (options.raw !== true && options[key] !== undefined)
      refuse(
        `${nameOf(key)} is for ${raw} tests (a fixed start time): through the control server the clients meet at a start ` +
          `barrier on server 0 (${nameOf('barrierTimeoutSec')})`,
      );
  if (options.dataPorts !== undefined && options.raw === true)
    refuse(`${nameOf('dataPorts')}: a bare service port (${raw}) has no data ports, only ${nameOf('port')}`);
  checkArchSelectors(options.arch, [options.nodeSelector, options.serverNodeSelector, options.clientNodeSelector], nameOf('arch'));
  const stray = options.extraClientArgs?.[0];
  if (stray !== undefined && !stray.startsWith('-'))
    refuse(`${nameOf('extraClientArgs')} must start with a flag, got ${JSON.stringify(stray)} (the workload is ${nameOf('workload')})`);
  const shape = serverShapeOf(options);
  const over = serverLimits(shape).find((limit) => limit.value > limit.max);
  if (over !== undefined)
    refuse(
      `${nameOf('clients')} ${shape.clients} over ${nameOf('servers')} ${shape.servers} need ${over.flag} ${over.value} on a ` +
        `server, more than socktune server takes (${over.max}): add servers, or give each client fewer connections ` +
        `(${nameOf('connections')})`,
    );
  const ports = dataPortsOf(options);
  if (ports !== undefined) {
    const port = options.port ?? RENDER_DEFAULTS.port;
    const tests = testsAtOnce(shape);
    const range = `${nameOf('dataPorts')} ${ports.first}-${ports.last}`;
    if (port >= ports.first && port <= ports.last) refuse(`${range} holds the control port ${nameOf('port')} ${port}`);
    if (ports.last - ports.first + 1 < tests)
      refuse(`${range} has ${ports.last - ports.first + 1} ports; a server may run ${tests} tests at once, each on a port of its own`);
  }
}
