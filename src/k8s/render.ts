import { MAX_TEST_DURATION_MS } from '../bench/control/control-protocol.ts';
import { DRAIN_GRACE_MS } from '../bench/engines/data-session.ts';
import { formatSizeFlag } from '../bench/results/format.ts';
import { CONTROL_SERVER_DEFAULTS } from '../bench/servers/control/control-server.ts';
import { SocktuneError } from '../core/errors.ts';
import { boolean, integer, nonEmptyString, number, oneOf, validateFields, type FieldCheck } from '../core/validate.ts';
import { IO_MODELS, type IoModel } from '../transport/server/options.ts';
import type { YamlValue } from './yaml.ts';

/**
 * One distributed test as Kubernetes objects: M `socktune server` pods behind a Service, and N client
 * pods in an Indexed Job that all start at the same wall-clock time (`--start-at`) and print their
 * result as the last line of their log, for `socktune k8s collect` to merge. Pure: the test id and
 * the clock come in as arguments, so the same input renders the same manifests.
 */

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

export interface RenderOptions {
  /** The client command every client pod runs. */
  workload: Workload;
  /** The image; its entrypoint must be `socktune` (`npm run build:image` builds one FROM scratch). */
  image: string;
  /** Client pods: the Job's completions and parallelism. @default 2 */
  clients?: number;
  /** Server pods: the Deployment's replicas. @default 1 */
  servers?: number;
  /** Seconds each client measures (`-t`). @default 10 */
  durationSec?: number;
  /** Warm-up seconds left out of the summary (`--omit`). @default 0 */
  omitSec?: number;
  /** Seconds per interval (`-i`); merge lines the clients' intervals up by it. @default 1 */
  intervalSec?: number;
  /** Bytes per request or message (`--size`), per write for stream (`-l`). @default the command's own */
  size?: number;
  /** Connections per client: `-C` (crr: transactions in flight; stream: `-P`). @default the command's own */
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
  /** With `raw`: a headless Service, each client resolving it once, instead of a ClusterIP. @default false */
  headless?: boolean;
  /** The server port, and the Service's. @default 5210 */
  port?: number;
  /** The address servers listen on (`::` on an IPv6-only cluster). @default '0.0.0.0' */
  bind?: string;
  /** The namespace of every object; unset, kubectl's current one. */
  namespace?: string;
  /** Node labels every pod must match. */
  nodeSelector?: Readonly<Record<string, string>>;
  /** Node labels the server pods must match, over `nodeSelector`. */
  serverNodeSelector?: Readonly<Record<string, string>>;
  /** Node labels the client pods must match, over `nodeSelector`. */
  clientNodeSelector?: Readonly<Record<string, string>>;
  /** Keep clients off nodes that run a server of the test: `required`, `preferred` or `none`. @default 'required' */
  antiAffinity?: AntiAffinity;
  /** Seconds from rendering to the clients' common start: time to apply, schedule and pull. @default 60 */
  startMarginSec?: number;
  /** Seconds a client may start after `--start-at` before it refuses to run (`--start-late-tolerance`). @default 1 */
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
  echo: false,
  nagle: false,
  raw: false,
  headless: false,
  port: CONTROL_SERVER_DEFAULTS.port,
  bind: '0.0.0.0',
  antiAffinity: 'required',
  startMarginSec: 60,
  startLateToleranceSec: 1,
  clientResources: Object.freeze({ cpu: '1', memory: '512Mi' }),
  serverResources: Object.freeze({ cpu: '2', memory: '1Gi' }),
  cpuLimit: true,
  ttlSecondsAfterFinished: 3600,
  /** Added to the margin and the test's own time for the Job's deadline: connect, drain, report. */
  deadlineSlackSec: 120,
});

/** The user the pods run as: 65532, the `nonroot` user of distroless images, also in the image's /etc/passwd. */
export const POD_USER = 65532;

/** RFC 1123 label as Kubernetes checks names and label values; short, so that `socktune-<id>-clients-<index>` fits. */
const TEST_ID = /^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const LABEL_KEY = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
/** A Kubernetes quantity as resources take it: `2`, `500m`, `1.5`, `512Mi`, `1G`. */
const QUANTITY = /^(?:\d+(?:\.\d+)?|\.\d+)(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const matches =
  (pattern: RegExp, what: string): FieldCheck =>
  (value) =>
    typeof value === 'string' && pattern.test(value) ? undefined : what;

const selector: FieldCheck = (value) =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.entries(value).every(([key, label]) => LABEL_KEY.test(key) && typeof label === 'string' && LABEL_VALUE.test(label))
    ? undefined
    : 'node labels { key: value } with valid Kubernetes label keys and values';

const resources: FieldCheck = (value) => {
  const { cpu, memory, ...rest } = (value ?? {}) as Record<string, unknown>;
  return typeof value === 'object' &&
    Object.keys(rest).length === 0 &&
    typeof cpu === 'string' &&
    QUANTITY.test(cpu) &&
    typeof memory === 'string' &&
    QUANTITY.test(memory)
    ? undefined
    : "{ cpu, memory } as Kubernetes quantities ('1', '500m', '512Mi')";
};

const stringList: FieldCheck = (value) =>
  Array.isArray(value) && value.every((item) => typeof item === 'string') ? undefined : 'a list of strings';

const bufferSize = integer(1, 2 ** 31 - 1);

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
  // With every capability dropped a non-root server cannot bind below 1024.
  port: integer(1024, 65_535),
  bind: nonEmptyString,
  namespace: matches(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'a namespace name (RFC 1123 label)'),
  nodeSelector: selector,
  serverNodeSelector: selector,
  clientNodeSelector: selector,
  antiAffinity: oneOf(ANTI_AFFINITIES),
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
  const stray = options.extraClientArgs?.[0];
  if (stray !== undefined && !stray.startsWith('-'))
    refuse(`${nameOf('extraClientArgs')} must start with a flag, got ${JSON.stringify(stray)} (the workload is ${nameOf('workload')})`);
}

/** Names a render option in an error message. */
export type RenderOptionNamer = (key: keyof RenderOptions) => string;

export interface RenderContext {
  /** Names every object: `socktune-<testId>-server`, `socktune-<testId>-clients`; the `socktune.io/test` label. */
  testId: string;
  /** The current Unix time in ms, from which the start time is counted. */
  now: number;
  /** How a refused option is named (validateRenderOptions); `options.<key>` when absent. */
  nameOption?: RenderOptionNamer;
}

export interface RenderedTest {
  testId: string;
  /** The clients' common start, Unix ms (`--start-at`). */
  startAt: number;
  serviceName: string;
  jobName: string;
  /** The Service, the server Deployment and the client Job, in the order to apply them. */
  manifests: Record<string, YamlValue>[];
  /** What to do with them: apply, watch, collect, clean up; one line each. */
  notes: string[];
}

type Role = 'server' | 'client';

function seconds(value: number): string {
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
function socketArgs(options: RenderOptions, side: Role): string[] {
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

/** The server container's command line (after the `socktune` entrypoint). */
export function serverArgs(options: RenderOptions): string[] {
  const port = String(options.port ?? RENDER_DEFAULTS.port);
  const bind = options.bind ?? RENDER_DEFAULTS.bind;
  if (options.raw === true) {
    const service = rawService(options.workload, options.echo === true);
    return ['server', 'service', service, '--bind', bind, '-p', port, '--json', ...socketArgs(options, 'server')];
  }
  const clients = options.clients ?? RENDER_DEFAULTS.clients;
  const testSec =
    (options.durationSec ?? RENDER_DEFAULTS.durationSec) + (options.omitSec ?? RENDER_DEFAULTS.omitSec) + DRAIN_GRACE_MS / 1000;
  return [
    'server',
    '--bind',
    bind,
    '-p',
    port,
    '--json',
    // A Service may send every client to one pod: let one server take them all.
    ...(clients > CONTROL_SERVER_DEFAULTS.maxTests ? ['--max-tests', String(clients)] : []),
    ...(testSec > CONTROL_SERVER_DEFAULTS.maxTestDurationMs / 1000
      ? ['--max-duration', String(Math.min(MAX_TEST_DURATION_MS / 1000, Math.ceil(testSec) + 60))]
      : []),
  ];
}

/** Every client container's command line (after the `socktune` entrypoint). */
export function clientArgs(options: RenderOptions, serviceName: string, startAt: number): string[] {
  const port = String(options.port ?? RENDER_DEFAULTS.port);
  const target = options.raw === true ? ['--raw', '-c', `${serviceName}:${port}`] : ['-c', serviceName, '-p', port];
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
    '--start-at',
    String(startAt),
    '--start-late-tolerance',
    seconds(options.startLateToleranceSec ?? RENDER_DEFAULTS.startLateToleranceSec),
    // One JSON line per interval, then the result as the log's last line.
    '--ndjson',
    ...(options.extraClientArgs ?? []),
  ];
}

function labelsOf(testId: string, role: Role): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'socktune',
    'app.kubernetes.io/component': role,
    'socktune.io/test': testId,
  };
}

function selectorOf(testId: string, role: Role): Record<string, string> {
  return { 'socktune.io/test': testId, 'app.kubernetes.io/component': role };
}

/** Clients off the servers' nodes (and back), and each role spread over nodes where it can be. */
function affinityOf(testId: string, role: Role, mode: AntiAffinity): YamlValue | undefined {
  if (mode === 'none') return undefined;
  const term = (other: Role): Record<string, YamlValue> => ({
    labelSelector: { matchLabels: selectorOf(testId, other) },
    topologyKey: 'kubernetes.io/hostname',
  });
  const other: Role = role === 'server' ? 'client' : 'server';
  const preferred = [
    ...(mode === 'preferred' ? [{ weight: 100, podAffinityTerm: term(other) }] : []),
    { weight: 50, podAffinityTerm: term(role) },
  ];
  return {
    podAntiAffinity: {
      ...(mode === 'required' ? { requiredDuringSchedulingIgnoredDuringExecution: [term(other)] } : {}),
      preferredDuringSchedulingIgnoredDuringExecution: preferred,
    },
  };
}

function resourcesOf(resources: PodResources, cpuLimit: boolean): YamlValue {
  return {
    requests: { cpu: resources.cpu, memory: resources.memory },
    limits: cpuLimit ? { cpu: resources.cpu, memory: resources.memory } : { memory: resources.memory },
  };
}

/** The pod template both roles share: non-root, no privilege, read-only root, no API token. */
function podSpec(
  options: RenderOptions,
  testId: string,
  role: Role,
  args: string[],
  extra: { restartPolicy: string; ports?: YamlValue },
): Record<string, YamlValue> {
  const nodeSelector = {
    ...options.nodeSelector,
    ...(role === 'server' ? options.serverNodeSelector : options.clientNodeSelector),
  };
  const affinity = affinityOf(testId, role, options.antiAffinity ?? RENDER_DEFAULTS.antiAffinity);
  const env =
    options.authSecret === undefined
      ? undefined
      : [{ name: 'SOCKTUNE_AUTH_TOKEN', valueFrom: { secretKeyRef: { name: options.authSecret, key: 'token' } } }];
  return {
    restartPolicy: extra.restartPolicy,
    // Service links would add a dozen variables per Service in the namespace; the API token is not needed.
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 30,
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(affinity === undefined ? {} : { affinity }),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: POD_USER,
      runAsGroup: POD_USER,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: role,
        image: options.image,
        imagePullPolicy: 'IfNotPresent',
        args,
        ...(extra.ports === undefined ? {} : { ports: extra.ports }),
        ...(env === undefined ? {} : { env }),
        resources: resourcesOf(
          (role === 'server' ? options.serverResources : options.clientResources) ??
            (role === 'server' ? RENDER_DEFAULTS.serverResources : RENDER_DEFAULTS.clientResources),
          options.cpuLimit ?? RENDER_DEFAULTS.cpuLimit,
        ),
        // A failed client's last log lines (its error) become its termination message.
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      },
    ],
    // The root file system is read-only; Node may still want a scratch directory.
    volumes: [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }],
  };
}

/** The test's objects and what to do with them. Validates `options` first. */
export function renderTest(options: RenderOptions, context: RenderContext): RenderedTest {
  validateRenderOptions(options, context.nameOption);
  const { testId, now } = context;
  if (!TEST_ID.test(testId))
    throw new SocktuneError(
      'SOCKTUNE_ERR_INVALID_OPTION',
      "the test id must be 1 to 20 lowercase letters, digits or '-', starting and ending with a " +
        `letter or digit, got ${JSON.stringify(testId)}`,
    );
  const clients = options.clients ?? RENDER_DEFAULTS.clients;
  const servers = options.servers ?? RENDER_DEFAULTS.servers;
  const port = options.port ?? RENDER_DEFAULTS.port;
  const marginSec = options.startMarginSec ?? RENDER_DEFAULTS.startMarginSec;
  const startAt = Math.round(now + marginSec * 1000);
  const testSec = (options.durationSec ?? RENDER_DEFAULTS.durationSec) + (options.omitSec ?? 0);
  const deadline = options.activeDeadlineSeconds ?? Math.ceil(marginSec + testSec + RENDER_DEFAULTS.deadlineSlackSec);
  const ttl = options.ttlSecondsAfterFinished ?? RENDER_DEFAULTS.ttlSecondsAfterFinished;
  const serviceName = `socktune-${testId}-server`;
  const jobName = `socktune-${testId}-clients`;
  const raw = options.raw === true;
  const headless = !raw || options.headless === true;
  const metadata = (name: string, role: Role): Record<string, YamlValue> => ({
    name,
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    labels: labelsOf(testId, role),
  });

  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(serviceName, 'server'),
    spec: {
      ...(headless ? { clusterIP: 'None' } : { type: 'ClusterIP' }),
      selector: selectorOf(testId, 'server'),
      ports: [{ name: 'socktune', port, targetPort: 'socktune', protocol: 'TCP' }],
    },
  };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(serviceName, 'server'),
    spec: {
      replicas: servers,
      selector: { matchLabels: selectorOf(testId, 'server') },
      template: {
        metadata: { labels: labelsOf(testId, 'server') },
        // No readiness probe: a TCP probe opens a control connection the server would log as a failed test every period.
        spec: podSpec(options, testId, 'server', serverArgs(options), {
          restartPolicy: 'Always',
          ports: [{ name: 'socktune', containerPort: port, protocol: 'TCP' }],
        }),
      },
    },
  };
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      ...metadata(jobName, 'client'),
      annotations: { 'socktune.io/start-at': String(startAt), 'socktune.io/start-at-utc': new Date(startAt).toISOString() },
    },
    spec: {
      completionMode: 'Indexed',
      completions: clients,
      parallelism: clients,
      // A retried client would start late and be refused anyway: one failure fails the Job.
      backoffLimit: 0,
      activeDeadlineSeconds: deadline,
      ttlSecondsAfterFinished: ttl,
      template: {
        metadata: { labels: labelsOf(testId, 'client') },
        spec: podSpec(options, testId, 'client', clientArgs(options, serviceName, startAt), { restartPolicy: 'Never' }),
      },
    },
  };

  const ns = options.namespace === undefined ? '' : ` -n ${options.namespace}`;
  const notes = [
    `socktune k8s render: test ${testId}, ${options.workload}${raw ? ' --raw' : ''}, ` +
      `${clients} client pod(s) against ${servers} server pod(s)`,
    `clients start at ${new Date(startAt).toISOString()} (--start-at ${startAt}); apply within ` +
      `${marginSec} s: a client more than ` +
      `${seconds(options.startLateToleranceSec ?? RENDER_DEFAULTS.startLateToleranceSec)} s late ` +
      'refuses to run',
    `apply:    kubectl apply${ns} -f THIS_FILE`,
    `watch:    kubectl get pods${ns} -l socktune.io/test=${testId} -o wide -w`,
    `wait:     kubectl wait${ns} --for=condition=complete job/${jobName} --timeout=${deadline}s`,
    `collect:  kubectl logs${ns} -l job-name=${jobName} --prefix --tail=-1 | socktune k8s collect --expect ${clients}`,
    '   or:    socktune k8s collect ' +
      `--kubectl${ns === '' ? '' : ` --namespace ${options.namespace}`} --test-id ${testId} ` +
      `--expect ${clients}`,
    `servers:  kubectl logs${ns} -l socktune.io/test=${testId},app.kubernetes.io/component=server --prefix --tail=-1`,
    `clean up: kubectl delete${ns} deployment,service,job -l socktune.io/test=${testId}`,
    `the Job and its pods' logs are deleted ${ttl} s after it finishes (ttlSecondsAfterFinished): collect before`,
  ];
  return { testId, startAt, serviceName, jobName, manifests: [service, deployment, job], notes };
}

/** The manifests as one `v1` List, as `kubectl get -o json` prints several objects. */
export function asList(rendered: RenderedTest): Record<string, YamlValue> {
  return { apiVersion: 'v1', kind: 'List', metadata: {}, items: rendered.manifests };
}
