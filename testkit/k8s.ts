import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { parseAllDocuments } from 'yaml';
import { runCli, type CliRun } from './cli.ts';

/** The parts of the rendered objects the tests read. */
export interface Container {
  name: string;
  image: string;
  args: string[];
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  ports?: { containerPort: number }[];
  readinessProbe?: Record<string, unknown>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
}

export interface PodSpec {
  restartPolicy: string;
  nodeSelector?: Record<string, string>;
  affinity?: { podAntiAffinity: Record<string, unknown[]> };
  securityContext: Record<string, unknown>;
  initContainers?: Container[];
  containers: [Container];
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown> & { template?: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

export interface Rendered {
  run: CliRun;
  service: Manifest;
  statefulSet: Manifest;
  job: Manifest;
  networkPolicy?: Manifest;
  manifests: Manifest[];
  /** The comment lines before the first document. */
  comments: string[];
}

/**
 * `socktune k8s render ...` through the real CLI (or `runner`: runInProcess, where a process per
 * render would cost more than the check), its YAML read back as kubectl reads it (YAML 1.1).
 */
export async function render(args: string[], runner: (args: string[]) => Promise<CliRun> = (all) => runCli(all)): Promise<Rendered> {
  const run = await runner(['k8s', 'render', ...args]);
  assert.equal(run.code, 0, run.stderr);
  const documents = parseAllDocuments(run.stdout, { version: '1.1' });
  const manifests = (Array.isArray(documents) ? documents : [documents]).map((document) => {
    assert.deepEqual(document.errors, [], run.stdout);
    return document.toJS() as Manifest;
  });
  const byKind = (kind: string): Manifest => {
    const found = manifests.filter((manifest) => manifest.kind === kind);
    assert.equal(found.length, 1, `one ${kind}`);
    return found[0]!;
  };
  const comments = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('#'))
    .map((line) => line.replace(/^# ?/, ''));
  const [networkPolicy, ...more] = manifests.filter((manifest) => manifest.kind === 'NetworkPolicy');
  assert.equal(more.length, 0, 'at most one NetworkPolicy');
  return {
    run,
    service: byKind('Service'),
    statefulSet: byKind('StatefulSet'),
    job: byKind('Job'),
    ...(networkPolicy === undefined ? {} : { networkPolicy }),
    manifests,
    comments,
  };
}

export function containerOf(manifest: Manifest): Container {
  return manifest.spec.template!.spec.containers[0];
}

/** `$(NAME)` in a container's args, as the kubelet expands it from the container's environment. */
export function expandArgs(args: readonly string[], env: Readonly<Record<string, string>>): string[] {
  return args.map((arg) => arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole));
}

/** The value after `flag` in a command line. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index < 0 ? undefined : args[index + 1];
}

/** A copy of `args` with the value after `flag` replaced. */
export function withFlag(args: readonly string[], flag: string, value: string): string[] {
  const index = args.indexOf(flag);
  assert.ok(index >= 0, `${flag} in ${args.join(' ')}`);
  return [...args.slice(0, index + 1), value, ...args.slice(index + 2)];
}

/** Lines as `kubectl logs --prefix` prints a pod's log. */
export function prefixed(pod: string, container: string, text: string): string {
  return text
    .split('\n')
    .filter((line, index, lines) => line !== '' || index < lines.length - 1)
    .map((line) => `[pod/${pod}/${container}] ${line}`)
    .join('\n');
}

export interface Balancer {
  /** The virtual address clients connect to, as a ClusterIP. */
  host: string;
  port: number;
  /** Connections handed to each target, in the targets' order. */
  handed: number[];
  close(): Promise<void>;
}

/**
 * A stand-in for kube-proxy in front of a ClusterIP Service: it listens on a virtual address of its
 * own (on loopback, 127.0.0.2) and hands every connection to the next target in turn, at layer 4.
 */
export function startBalancer(targets: readonly number[], host = '127.0.0.2'): Promise<Balancer> {
  const sockets = new Set<Socket>();
  const handed = targets.map(() => 0);
  let next = 0;
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    const target = next++ % targets.length;
    handed[target]!++;
    const outbound = connect({ host: '127.0.0.1', port: targets[target]!, allowHalfOpen: true });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        host,
        port,
        handed,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
