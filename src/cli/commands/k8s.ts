import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { packageVersion } from '../version.ts';
import { constants as bufferConstants } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { SocktuneError } from '../../core/errors.ts';
import type { PodLog } from '../../k8s/collect.ts';
import {
  ANTI_AFFINITIES,
  asList,
  RENDER_DEFAULTS,
  renderTest,
  WORKLOADS,
  type AntiAffinity,
  type RenderOptions,
  type Workload,
} from '../../k8s/render.ts';
import { toYamlDocuments } from '../../k8s/yaml.ts';
import { IO_MODELS, type IoModel } from '../../transport/server/options.ts';
import { str } from '../client-settings.ts';
import type { Command, Values } from '../command.ts';
import { MAX_REQUEST_BYTES, MAX_SOCKET_BUFFER, parseCount, parseSeconds, parseSize } from '../units.ts';
import { printMerged, readLimited } from './merge.ts';

/** The most pod-log input collect holds from kubectl, stdin or one file: every pod's log at once, as one string. */
const MAX_LOG_BYTES = Math.min(512 * 1024 * 1024, bufferConstants.MAX_STRING_LENGTH);

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
  namespace: '--namespace',
  nodeSelector: '--node-selector',
  serverNodeSelector: '--server-node-selector',
  clientNodeSelector: '--client-node-selector',
  antiAffinity: '--anti-affinity',
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

function renderOptions(values: Values, extra: string[]): RenderOptions {
  const workload = choice<Workload>(values, 'workload', WORKLOADS);
  if (workload === undefined)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `say which client command the pods run: --workload ${WORKLOADS.join('|')}`);
  const count = (flag: string, min: number, max: number): number | undefined =>
    optional(values, flag, (text) => parseCount(text, `--${flag}`, min, max));
  const buffer = (flag: string): number | undefined => optional(values, flag, (text) => parseSize(text, `--${flag}`, MAX_SOCKET_BUFFER));
  const resources = (role: 'client' | 'server'): RenderOptions['clientResources'] => {
    const defaults = role === 'client' ? RENDER_DEFAULTS.clientResources : RENDER_DEFAULTS.serverResources;
    return { cpu: str(values, `${role}-cpu`) ?? defaults.cpu, memory: str(values, `${role}-memory`) ?? defaults.memory };
  };
  return {
    workload,
    image: str(values, 'image') ?? `localhost/socktune:${version()}`,
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
    namespace: str(values, 'namespace'),
    nodeSelector: labels(values, 'node-selector'),
    serverNodeSelector: labels(values, 'server-node-selector'),
    clientNodeSelector: labels(values, 'client-node-selector'),
    antiAffinity: choice<AntiAffinity>(values, 'anti-affinity', ANTI_AFFINITIES),
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

/** An option the renderer refused (named by its flag through FLAG_OF) is a usage error. */
function asUsage(error: unknown): unknown {
  if (!(error instanceof SocktuneError) || error.code !== 'SOCKTUNE_ERR_INVALID_OPTION') return error;
  return new SocktuneError('SOCKTUNE_ERR_USAGE', error.message, { cause: error });
}

export const k8sRenderCommand: Command = {
  name: 'k8s render',
  summary: 'print the Kubernetes objects of one distributed test: servers behind a Service, clients in an Indexed Job started together',
  usage:
    'socktune k8s render --workload rr|crr|stream|msg [--clients N] [--servers M] [-t 10] ' +
    '[--size 64] [-C 1] [...] [--json] [-- CLIENT FLAGS]',
  positionals: 'more client flags, after --',
  flags: {
    workload: { help: 'the client command every client pod runs: rr, crr, stream or msg', spec: { type: 'string' } },
    clients: { help: 'client pods (the Indexed Job)', spec: { type: 'string' }, value: '<n>', default: String(RENDER_DEFAULTS.clients) },
    servers: { help: 'server pods (the Deployment)', spec: { type: 'string' }, value: '<n>', default: String(RENDER_DEFAULTS.servers) },
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
    headless: { help: 'with --raw: a headless Service (each client resolves one pod) instead of a ClusterIP', spec: { type: 'boolean' } },
    port: { help: 'server and Service port', spec: { type: 'string', short: 'p' }, default: String(RENDER_DEFAULTS.port) },
    bind: { help: 'address the servers listen on (:: on IPv6-only clusters)', spec: { type: 'string' }, default: RENDER_DEFAULTS.bind },
    namespace: {
      help: "namespace of every object (default: kubectl's current one)",
      spec: { type: 'string', short: 'n' },
      value: '<name>',
    },
    image: {
      help: 'image whose entrypoint is socktune (npm run build:image builds one)',
      spec: { type: 'string' },
      value: '<image>',
      default: `localhost/socktune:${version()}`,
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
    'start-margin': {
      help: "seconds from now to the clients' common start (--start-at): time to apply, schedule and pull",
      spec: { type: 'string' },
      value: '<seconds>',
      default: String(RENDER_DEFAULTS.startMarginSec),
    },
    'start-late-tolerance': {
      help: 'seconds a client may start after that time; later, it refuses to run',
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
      help: 'seconds the Job may run (default: margin + test + 120)',
      spec: { type: 'string' },
      value: '<seconds>',
    },
    'auth-secret': {
      help: 'Secret whose key token becomes SOCKTUNE_AUTH_TOKEN of servers and clients',
      spec: { type: 'string' },
      value: '<name>',
    },
    'test-id': { help: 'names and labels the objects (socktune.io/test); default: random', spec: { type: 'string' }, value: '<id>' },
    json: { help: 'print a v1 List in JSON instead of YAML documents', spec: { type: 'boolean' } },
  },
  examples: [
    'socktune k8s render --workload rr --clients 8 --servers 2 -t 30 -C 4 --depth 8 > test.yaml',
    'socktune k8s render --workload stream --clients 4 -w 4M --server-node-selector pool=servers --client-node-selector pool=clients',
    'socktune k8s render --workload crr --raw --clients 16 --servers 4    # through kube-proxy',
    'socktune k8s render --workload stream --clients 4 -- -R    # flags after -- go to every client command line',
  ],
  run(values, io, extra) {
    let rendered: ReturnType<typeof renderTest>;
    try {
      rendered = renderTest(renderOptions(values, extra), {
        testId: str(values, 'test-id') ?? randomBytes(3).toString('hex'),
        now: Date.now(),
        nameOption: (key) => FLAG_OF[key],
      });
    } catch (error) {
      throw asUsage(error);
    }
    if (values.json) io.out(JSON.stringify(asList(rendered), null, 2));
    else io.out(toYamlDocuments(rendered.manifests, rendered.notes).trimEnd());
    // YAML carries the notes as comments; JSON cannot.
    if (values.json) io.err(rendered.notes.join('\n'));
    return Promise.resolve(0);
  },
};

async function readInput(file: string): Promise<string> {
  if (file === '-') {
    if (process.stdin.isTTY)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'give the pod logs as files, or pipe kubectl logs --prefix into stdin');
    return readLimited(process.stdin, 'stdin', MAX_LOG_BYTES);
  }
  return readLimited(createReadStream(file), file, MAX_LOG_BYTES);
}

/** `kubectl logs` of the test's client pods, prefixed by pod; every line (the result line is long). */
function kubectlLogs(testId: string, namespace: string | undefined): Promise<string> {
  const args = [
    'logs',
    ...(namespace === undefined ? [] : ['--namespace', namespace]),
    '--selector',
    `socktune.io/test=${testId},app.kubernetes.io/component=client`,
    '--prefix',
    '--tail=-1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_LOG_BYTES) {
        child.kill();
        reject(
          new SocktuneError('SOCKTUNE_ERR_MERGE', `kubectl logs printed more than ${MAX_LOG_BYTES} bytes: not a socktune test's logs`),
        );
      } else chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new SocktuneError(
          'SOCKTUNE_ERR_USAGE',
          error.code === 'ENOENT'
            ? 'kubectl is not on PATH: give the pod logs as files or on stdin instead of --kubectl'
            : `cannot run kubectl: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else
        reject(
          new SocktuneError(
            'SOCKTUNE_ERR_MERGE',
            `kubectl ${args.join(' ')} failed (exit ${String(code)}): ${stderr.trim() || 'no message'}`,
          ),
        );
    });
  });
}

export const k8sCollectCommand: Command = {
  name: 'k8s collect',
  summary: "merge the results of a test's client pods from their logs (kubectl logs --prefix, or one file per pod)",
  usage:
    'socktune k8s collect [LOG...|-] [--expect N] [--json]\n       socktune k8s collect ' +
    '--kubectl --test-id ID [-n NAMESPACE] [--expect N] [--json]',
  positionals: 'log files: kubectl logs --prefix output, or one file per pod; - or none: stdin',
  flags: {
    expect: { help: 'the number of client pods the test ran: fewer or more results are refused', spec: { type: 'string' }, value: '<n>' },
    kubectl: { help: "run kubectl logs for the test's client pods instead of reading files", spec: { type: 'boolean' } },
    'test-id': { help: 'with --kubectl: the test (label socktune.io/test)', spec: { type: 'string' }, value: '<id>' },
    namespace: { help: 'with --kubectl: the namespace', spec: { type: 'string', short: 'n' }, value: '<name>' },
    json: { help: 'print the merged document (schema socktune/1, command "merge")', spec: { type: 'boolean' } },
  },
  examples: [
    'kubectl logs -l job-name=socktune-ab12cd-clients --prefix --tail=-1 | socktune k8s collect --expect 8',
    'socktune k8s collect --kubectl --test-id ab12cd --expect 8 --json > merged.json',
    'socktune k8s collect client-0.log client-1.log client-2.log',
  ],
  async run(values, io, files) {
    const expect = optional(values, 'expect', (text) => parseCount(text, '--expect', 1, 100_000));
    const testId = str(values, 'test-id');
    const namespace = str(values, 'namespace');
    const { collectSources, splitPodLogs } = await import('../../k8s/collect.ts');
    const { mergeResults } = await import('../../bench/results/merge.ts');
    let logs: PodLog[];
    if (values.kubectl) {
      if (testId === undefined)
        throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--kubectl needs --test-id: the socktune.io/test label of the pods');
      if (files.length > 0) throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--kubectl reads the logs itself: drop the files');
      logs = splitPodLogs(await kubectlLogs(testId, namespace), 'kubectl');
    } else {
      if (testId !== undefined || namespace !== undefined)
        throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--test-id and --namespace go with --kubectl');
      const inputs = files.length === 0 ? ['-'] : files;
      const texts = await Promise.all(inputs.map(async (file) => ({ file, text: await readInput(file) })));
      logs = texts.flatMap(({ file, text }) => splitPodLogs(text, file === '-' ? 'stdin' : file));
    }
    const merged = mergeResults(collectSources(logs, expect === undefined ? {} : { expect }));
    if (values.json) io.out(JSON.stringify(merged, null, 2));
    else printMerged(io, merged);
    return 0;
  },
};

/** `socktune k8s`: a distributed test on Kubernetes, rendered, then collected. */
export const k8sCommand: Command = {
  name: 'k8s',
  summary: "a test spread over Kubernetes pods: render its manifests, collect and merge the client pods' results",
  usage: 'socktune k8s render|collect [options]    (see socktune k8s MODE --help)',
  flags: {},
  subcommands: [k8sRenderCommand, k8sCollectCommand],
  examples: [
    'socktune k8s render --workload rr --clients 8 --servers 2 -t 30 > test.yaml && kubectl apply -f test.yaml',
    'kubectl logs -l job-name=socktune-ID-clients --prefix --tail=-1 | socktune k8s collect --expect 8',
  ],
  run() {
    return Promise.reject(
      new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose a mode: socktune k8s render or socktune k8s collect (see socktune k8s --help)'),
    );
  },
};
