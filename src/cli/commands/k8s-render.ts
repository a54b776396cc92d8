import { randomBytes } from 'node:crypto';
import { SocktuneError } from '../../core/errors.ts';
import { ARCHES, type Arch } from '../../k8s/field-checks.ts';
import { PRE_PULL_DEFAULTS, renderPrePull, type PrePullOptions } from '../../k8s/pre-pull.ts';
import { asList, renderTest } from '../../k8s/render.ts';
import {
  ANTI_AFFINITIES,
  RENDER_DEFAULTS,
  WORKLOADS,
  type AntiAffinity,
  type PortRange,
  type RenderOptions,
  type Workload,
} from '../../k8s/render-options.ts';
import { toYamlDocuments, type YamlValue } from '../../k8s/yaml.ts';
import { IO_MODELS, type IoModel } from '../../transport/server/options.ts';
import { str } from '../client-settings.ts';
import type { Command, Io, Values } from '../command.ts';
import { MAX_REQUEST_BYTES, MAX_SOCKET_BUFFER, parseCount, parseSeconds, parseSize } from '../units.ts';
import { packageVersion } from '../version.ts';

function version(): string {
  try {
    return packageVersion();
  } catch {
    return 'latest';
  }
}

function choice<T extends string>(values: Values, flag: string, choices: readonly T[]): T | undefined {
  const text = str(values, flag);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text))
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${flag} takes one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function optional<T>(values: Values, flag: string, parse: (text: string) => T): T | undefined {
  const text = str(values, flag);
  return text === undefined ? undefined : parse(text);
}

/** `key=value,key=value` → labels. */
function labels(values: Values, flag: string): Record<string, string> | undefined {
  return optional(values, flag, (text) =>
    Object.fromEntries(
      text.split(',').map((pair) => {
        const equals = pair.indexOf('=');
        if (equals <= 0)
          throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${flag} takes key=value[,key=value...], got ${JSON.stringify(text)}`);
        return [pair.slice(0, equals), pair.slice(equals + 1)];
      }),
    ),
  );
}

function wholeSeconds(values: Values, flag: string): number | undefined {
  return optional(values, flag, (text) => Math.ceil(parseSeconds(text, `--${flag}`)));
}

/** `LO-HI` → a port range; the renderer checks the ports themselves. */
function portRange(values: Values, flag: string): PortRange | undefined {
  return optional(values, flag, (text) => {
    const match = /^(\d+)-(\d+)$/.exec(text);
    if (!match)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `--${flag} takes a range of ports LO-HI, e.g. 20000-20999, got ${JSON.stringify(text)}`,
      );
    return { first: parseCount(match[1]!, `--${flag}`, 1, 65_535), last: parseCount(match[2]!, `--${flag}`, 1, 65_535) };
  });
}

/** `--run-as-user UID`, or `unset`: null, runAsUser left to the image or the platform. */
function runAsUser(values: Values): number | null | undefined {
  return optional(values, 'run-as-user', (text) => {
    if (text === 'unset') return null;
    const uid = Number(text);
    if (!/^\d+$/.test(text) || uid < 1 || uid > 2 ** 31 - 1)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `--run-as-user takes a UID from 1 to ${2 ** 31 - 1} (the pods run as non-root), or unset, got ${JSON.stringify(text)}`,
      );
    return uid;
  });
}

/** The flag behind each option, so that a refused option is named as the user typed it; every option has one. */
const FLAG_OF: Readonly<Record<keyof RenderOptions, string>> = {
  workload: '--workload',
  clients: '--clients',
  servers: '--servers',
  durationSec: '-t',
  omitSec: '--omit',
  intervalSec: '-i',
  size: '--size',
  connections: '-C',
  depth: '--depth',
  rate: '--rate',
  echo: '--echo',
  window: '-w',
  sendBuffer: '--sndbuf',
  receiveBuffer: '--rcvbuf',
  nagle: '--nagle',
  workers: '--workers',
  ioModel: '--io-model',
  raw: '--raw',
  headless: '--headless',
  port: '-p',
  bind: '--bind',
  networkPolicy: '--network-policy',
  dataPorts: '--data-ports',
  namespace: '--namespace',
  nodeSelector: '--node-selector',
  serverNodeSelector: '--server-node-selector',
  clientNodeSelector: '--client-node-selector',
  arch: '--arch',
  antiAffinity: '--anti-affinity',
  runAsUser: '--run-as-user',
  barrierTimeoutSec: '--barrier-timeout',
  startMarginSec: '--start-margin',
  startLateToleranceSec: '--start-late-tolerance',
  clientResources: '--client-cpu/--client-memory',
  serverResources: '--server-cpu/--server-memory',
  cpuLimit: '--no-cpu-limit',
  ttlSecondsAfterFinished: '--ttl',
  activeDeadlineSeconds: '--active-deadline',
  authSecret: '--auth-secret',
  extraClientArgs: 'the client flags after --',
  image: '--image',
};

const PRE_PULL_FLAG_OF: Readonly<Record<keyof PrePullOptions, string>> = {
  image: '--image',
  namespace: '--namespace',
  nodeSelector: '--node-selector',
  arch: '--arch',
  runAsUser: '--run-as-user',
  pauseImage: '--pause-image',
};

/** What `--pre-pull` takes besides its own options: the rest describe a test, which it does not render. */
const PRE_PULL_OWN_FLAGS = new Set([
  'pre-pull',
  'pause-image',
  'image',
  'namespace',
  'node-selector',
  'arch',
  'run-as-user',
  'test-id',
  'json',
]);

const defaultImage = (): string => `localhost/socktune:${version()}`;

function renderOptions(values: Values, extra: string[]): RenderOptions {
  const workload = choice<Workload>(values, 'workload', WORKLOADS);
  if (workload === undefined)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `say which client command the pods run: --workload ${WORKLOADS.join('|')}`);
  if (values['pause-image'] !== undefined) throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--pause-image goes with --pre-pull');
  const count = (flag: string, min: number, max: number): number | undefined =>
    optional(values, flag, (text) => parseCount(text, `--${flag}`, min, max));
  const buffer = (flag: string): number | undefined => optional(values, flag, (text) => parseSize(text, `--${flag}`, MAX_SOCKET_BUFFER));
  const resources = (role: 'client' | 'server'): RenderOptions['clientResources'] => {
    const defaults = role === 'client' ? RENDER_DEFAULTS.clientResources : RENDER_DEFAULTS.serverResources;
    return { cpu: str(values, `${role}-cpu`) ?? defaults.cpu, memory: str(values, `${role}-memory`) ?? defaults.memory };
  };
  return {
    workload,
    image: str(values, 'image') ?? defaultImage(),
    clients: count('clients', 1, 10_000),
    servers: count('servers', 1, 1000),
    durationSec: optional(values, 'time', (text) => parseSeconds(text, '-t')),
    omitSec: optional(values, 'omit', (text) => parseSeconds(text, '--omit')),
    intervalSec: optional(values, 'interval', (text) => parseSeconds(text, '-i')),
    size: optional(values, 'size', (text) => parseSize(text, '--size', MAX_REQUEST_BYTES)),
    connections: count('connections', 1, 10_000),
    depth: count('depth', 1, 100_000),
    rate: count('rate', 1, 10_000_000),
    echo: values.echo === true ? true : undefined,
    window: buffer('window'),
    sendBuffer: buffer('sndbuf'),
    receiveBuffer: buffer('rcvbuf'),
    nagle: values.nagle === true ? true : undefined,
    ioModel: choice<IoModel>(values, 'io-model', IO_MODELS),
    workers: count('workers', 1, 65_536),
    raw: values.raw === true ? true : undefined,
    headless: values.headless === true ? true : undefined,
    port: count('port', 1, 65_535),
    bind: str(values, 'bind'),
    networkPolicy: values['network-policy'] === true ? true : undefined,
    dataPorts: portRange(values, 'data-ports'),
    namespace: str(values, 'namespace'),
    nodeSelector: labels(values, 'node-selector'),
    serverNodeSelector: labels(values, 'server-node-selector'),
    clientNodeSelector: labels(values, 'client-node-selector'),
    arch: choice<Arch>(values, 'arch', ARCHES),
    antiAffinity: choice<AntiAffinity>(values, 'anti-affinity', ANTI_AFFINITIES),
    runAsUser: runAsUser(values),
    barrierTimeoutSec: optional(values, 'barrier-timeout', (text) => parseSeconds(text, '--barrier-timeout')),
    startMarginSec: optional(values, 'start-margin', (text) => parseSeconds(text, '--start-margin')),
    startLateToleranceSec: optional(values, 'start-late-tolerance', (text) => parseSeconds(text, '--start-late-tolerance')),
    clientResources: resources('client'),
    serverResources: resources('server'),
    cpuLimit: values['no-cpu-limit'] === true ? false : undefined,
    ttlSecondsAfterFinished: wholeSeconds(values, 'ttl'),
    activeDeadlineSeconds: wholeSeconds(values, 'active-deadline'),
    authSecret: str(values, 'auth-secret'),
    extraClientArgs: extra.length > 0 ? extra : undefined,
  };
}

function prePullOptions(values: Values, extra: string[]): PrePullOptions {
  const stray = Object.keys(values).find((flag) => values[flag] !== undefined && !PRE_PULL_OWN_FLAGS.has(flag));
  if (stray !== undefined || extra.length > 0)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `${stray === undefined ? 'client flags after --' : `--${stray}`} describe a test; --pre-pull renders the pre-pull DaemonSet alone ` +
        '(with --image, --namespace, --node-selector, --arch, --run-as-user, --pause-image): render the test after it',
    );
  return {
    image: str(values, 'image') ?? defaultImage(),
    namespace: str(values, 'namespace'),
    nodeSelector: labels(values, 'node-selector'),
    arch: choice<Arch>(values, 'arch', ARCHES),
    runAsUser: runAsUser(values),
    pauseImage: str(values, 'pause-image'),
  };
}

/** An option the renderer refused (named by its flag) is a usage error. */
function asUsage(error: unknown): unknown {
  if (!(error instanceof SocktuneError) || error.code !== 'SOCKTUNE_ERR_INVALID_OPTION') return error;
  return new SocktuneError('SOCKTUNE_ERR_USAGE', error.message, { cause: error });
}

/** YAML documents led by the notes as comments, or a JSON List with the notes on stderr; warnings on stderr either way. */
function print(io: Io, json: boolean, rendered: { manifests: Record<string, YamlValue>[]; notes: string[]; warnings?: string[] }): void {
  if (json) {
    io.out(JSON.stringify(asList(rendered), null, 2));
    io.err(rendered.notes.join('\n'));
    return;
  }
  io.out(toYamlDocuments(rendered.manifests, rendered.notes).trimEnd());
  if (rendered.warnings !== undefined && rendered.warnings.length > 0) io.err(rendered.warnings.join('\n'));
}

export const k8sRenderCommand: Command = {
  name: 'k8s render',
  summary:
    'print the Kubernetes objects of one distributed test: servers of a StatefulSet, clients in an Indexed Job started together, ' +
    'client i on server i mod M',
  usage:
    'socktune k8s render --workload rr|crr|stream|msg [--clients N] [--servers M] [-t 10] ' +
    '[--size 64] [-C 1] [...] [--json] [-- CLIENT FLAGS]\n       socktune k8s render --pre-pull --image IMAGE [-n NS] [--arch amd64]',
  positionals: 'more client flags, after --',
  flags: {
    workload: { help: 'the client command every client pod runs: rr, crr, stream or msg', spec: { type: 'string' } },
    clients: { help: 'client pods (the Indexed Job)', spec: { type: 'string' }, value: '<n>', default: String(RENDER_DEFAULTS.clients) },
    servers: {
      help: 'server pods (the StatefulSet); client i reaches server i mod M',
      spec: { type: 'string' },
      value: '<n>',
      default: String(RENDER_DEFAULTS.servers),
    },
    time: { help: 'seconds each client measures', spec: { type: 'string', short: 't' }, default: String(RENDER_DEFAULTS.durationSec) },
    omit: { help: 'warm-up seconds left out of the summary', spec: { type: 'string' } },
    interval: { help: 'seconds per interval', spec: { type: 'string', short: 'i' }, default: String(RENDER_DEFAULTS.intervalSec) },
    size: { help: 'bytes per request or message; stream: per write (-l)', spec: { type: 'string' } },
    connections: { help: 'connections per client; crr: transactions in flight; stream: -P', spec: { type: 'string', short: 'C' } },
    depth: { help: 'rr, msg --echo: requests in flight per connection', spec: { type: 'string' } },
    rate: { help: 'rr: open loop, requests/s per client', spec: { type: 'string' } },
    echo: { help: 'msg: echoed messages instead of one way', spec: { type: 'boolean' } },
    window: { help: 'SO_SNDBUF and SO_RCVBUF on both ends, e.g. 256K', spec: { type: 'string', short: 'w' } },
    sndbuf: { help: 'SO_SNDBUF (overrides -w)', spec: { type: 'string' } },
    rcvbuf: { help: 'SO_RCVBUF (overrides -w)', spec: { type: 'string' } },
    nagle: { help: 'leave Nagle on: no TCP_NODELAY', spec: { type: 'boolean' } },
    'io-model': { help: 'server I/O model: loop, workers, thread-per-conn', spec: { type: 'string' } },
    workers: { help: 'threads for --io-model workers', spec: { type: 'string' } },
    raw: {
      help:
        'bare service ports (server service NAME) behind a ClusterIP Service that kube-proxy/IPVS ' +
        'balances, --raw clients: client-side numbers only',
      spec: { type: 'boolean' },
    },
    headless: {
      help: 'with --raw: client i on server i mod M by name, as without --raw, instead of a ClusterIP',
      spec: { type: 'boolean' },
    },
    port: { help: 'server and Service port', spec: { type: 'string', short: 'p' }, default: String(RENDER_DEFAULTS.port) },
    bind: { help: 'address the servers listen on (:: on IPv6-only clusters)', spec: { type: 'string' }, default: RENDER_DEFAULTS.bind },
    'network-policy': {
      help: "a NetworkPolicy: only the test's client pods reach its server pods, on the port and the data ports (TCP and UDP)",
      spec: { type: 'boolean' },
    },
    'data-ports': {
      help:
        "ports the control server's data listeners bind (server --data-ports); with --network-policy by default " +
        `${RENDER_DEFAULTS.firstDataPort}-${RENDER_DEFAULTS.firstDataPort + RENDER_DEFAULTS.dataPortCount - 1} ` +
        '(wider when a server runs more tests)',
      spec: { type: 'string' },
      value: '<lo-hi>',
    },
    namespace: {
      help: "namespace of every object (default: kubectl's current one)",
      spec: { type: 'string', short: 'n' },
      value: '<name>',
    },
    image: {
      help: 'image whose entrypoint is socktune (npm run build:image builds one); a localhost/ name is warned about: no node can pull it',
      spec: { type: 'string' },
      value: '<image>',
      default: defaultImage(),
    },
    arch: {
      help: "the image's architecture: pods only on nodes labelled kubernetes.io/arch with it (amd64, arm64; any: no selector)",
      spec: { type: 'string' },
      value: '<arch>',
      default: RENDER_DEFAULTS.arch,
    },
    'node-selector': { help: 'node labels every pod must match: key=value[,key=value]', spec: { type: 'string' }, value: '<labels>' },
    'server-node-selector': { help: 'node labels the server pods must match', spec: { type: 'string' }, value: '<labels>' },
    'client-node-selector': { help: 'node labels the client pods must match', spec: { type: 'string' }, value: '<labels>' },
    'anti-affinity': {
      help: 'keep clients off the nodes of servers: required, preferred or none',
      spec: { type: 'string' },
      value: '<mode>',
      default: RENDER_DEFAULTS.antiAffinity,
    },
    'run-as-user': {
      help:
        'UID (and GID) of the pods; unset: leave runAsUser to the image or the platform (OpenShift assigns its own); ' +
        'runAsNonRoot stays',
      spec: { type: 'string' },
      value: '<uid|unset>',
      default: String(RENDER_DEFAULTS.runAsUser),
    },
    'barrier-timeout': {
      help:
        'seconds each client waits at the start barrier on server 0 until all are there (time to apply, schedule and pull); ' +
        "then all start at one instant of that server's clock",
      spec: { type: 'string' },
      value: '<seconds>',
      default: String(RENDER_DEFAULTS.barrierTimeoutSec),
    },
    'start-margin': {
      help: "--raw: seconds from now to the clients' common start (--start-at; bare ports have no barrier)",
      spec: { type: 'string' },
      value: '<seconds>',
      default: String(RENDER_DEFAULTS.startMarginSec),
    },
    'start-late-tolerance': {
      help: '--raw: seconds a client may start after that time; later, it refuses to run',
      spec: { type: 'string' },
      value: '<seconds>',
      default: String(RENDER_DEFAULTS.startLateToleranceSec),
    },
    'client-cpu': {
      help: 'CPU of each client pod (request and limit)',
      spec: { type: 'string' },
      value: '<quantity>',
      default: RENDER_DEFAULTS.clientResources.cpu,
    },
    'client-memory': {
      help: 'memory of each client pod',
      spec: { type: 'string' },
      value: '<quantity>',
      default: RENDER_DEFAULTS.clientResources.memory,
    },
    'server-cpu': {
      help: 'CPU of each server pod (request and limit)',
      spec: { type: 'string' },
      value: '<quantity>',
      default: RENDER_DEFAULTS.serverResources.cpu,
    },
    'server-memory': {
      help: 'memory of each server pod',
      spec: { type: 'string' },
      value: '<quantity>',
      default: RENDER_DEFAULTS.serverResources.memory,
    },
    'no-cpu-limit': { help: 'CPU requests only, no limits (Burstable QoS: no CFS quota)', spec: { type: 'boolean' } },
    ttl: {
      help: 'seconds the finished Job and its logs are kept (ttlSecondsAfterFinished)',
      spec: { type: 'string' },
      value: '<seconds>',
      default: String(RENDER_DEFAULTS.ttlSecondsAfterFinished),
    },
    'active-deadline': {
      help: 'seconds the Job may run (default: --barrier-timeout, or with --raw --start-margin, + the test + 120)',
      spec: { type: 'string' },
      value: '<seconds>',
    },
    'auth-secret': {
      help: 'Secret whose key token becomes SOCKTUNE_AUTH_TOKEN of servers and clients',
      spec: { type: 'string' },
      value: '<name>',
    },
    'pre-pull': {
      help:
        'instead of a test: a DaemonSet that pulls --image onto every node of --arch (and --node-selector); ' +
        'apply it, wait, then render the test',
      spec: { type: 'boolean' },
    },
    'pause-image': {
      help: 'with --pre-pull: the image that holds each pod after the pull',
      spec: { type: 'string' },
      value: '<image>',
      default: PRE_PULL_DEFAULTS.pauseImage,
    },
    'test-id': { help: 'names and labels the objects (socktune.io/test); default: random', spec: { type: 'string' }, value: '<id>' },
    json: { help: 'print a v1 List in JSON instead of YAML documents', spec: { type: 'boolean' } },
  },
  examples: [
    'socktune k8s render --workload rr --clients 8 --servers 2 -t 30 -C 4 --depth 8 > test.yaml',
    'socktune k8s render --workload stream --clients 4 -w 4M --server-node-selector pool=servers --client-node-selector pool=clients',
    'socktune k8s render --workload crr --raw --clients 16 --servers 4    # through kube-proxy',
    'socktune k8s render --workload rr --clients 6 --servers 3 --network-policy --run-as-user unset    # locked down, OpenShift',
    'socktune k8s render --pre-pull --image registry.example/socktune:0.1.0 > pre-pull.yaml    # before the test',
    'socktune k8s render --workload stream --clients 4 -- -R    # flags after -- go to every client command line',
  ],
  run(values, io, extra) {
    const testId = str(values, 'test-id') ?? randomBytes(3).toString('hex');
    try {
      if (values['pre-pull'] === true)
        print(
          io,
          values.json === true,
          renderPrePull(prePullOptions(values, extra), testId, (key) => PRE_PULL_FLAG_OF[key]),
        );
      else
        print(
          io,
          values.json === true,
          renderTest(renderOptions(values, extra), { testId, now: Date.now(), nameOption: (key) => FLAG_OF[key] }),
        );
    } catch (error) {
      throw asUsage(error);
    }
    return Promise.resolve(0);
  },
};
