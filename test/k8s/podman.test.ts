// The rendered test in containers: the single executable built here, an image built FROM scratch
// around it (npm run build:image), M server and N client containers on a podman network of their own
// (198.18.0.0/15), each started as its pod would be — the manifest's arguments, its user, read-only
// root with a tmpfs on /tmp, no capabilities — and the client containers' logs collected and merged.
// Each server pod's name resolves to its container, as the headless Service answers for a StatefulSet's pods.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, runCli } from '../../testkit/cli.ts';
import { ROOT, run, type Run } from '../../testkit/package.ts';
import { validateManifest } from '../../testkit/k8s-schema.ts';
import { containerOf, expandArgs, prefixed, render, type PodSpec } from '../../testkit/k8s.ts';

const onPath = (command: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

const missing =
  process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)
    ? `the single executable is built for linux-x64 and linux-arm64, this is ${process.platform}-${process.arch}`
    : !onPath('podman') || !onPath('buildah')
      ? 'podman and buildah are not installed (Debian: apt-get install buildah podman runc, as .ci/run does)'
      : process.getuid?.() !== 0
        ? 'building the image mounts a container file system (buildah mount), which needs root'
        : !existsSync(join(ROOT, 'node_modules', 'node', 'bin', 'node'))
          ? 'the pinned Node (node_modules/node) is not installed: run npm ci'
          : undefined;

const id = randomBytes(3).toString('hex');
const IMAGE = `localhost/socktune-test:${id}`;
const NETWORK = `socktune-test-${id}`;
/** A /24 of 198.18.0.0/15 (benchmarking addresses), picked at random so parallel runs do not collide. */
const SUBNET_PREFIX = `198.${18 + (randomBytes(1)[0]! & 1)}.${1 + (randomBytes(1)[0]! % 254)}`;
const work = mkdtempSync(join(tmpdir(), 'socktune-k8s-podman-'));
const created: string[] = [];
let podman: string[] = ['podman'];
/** Why containers cannot run here, found by starting one; undefined when they can. */
let cannotRun: string | undefined = missing;

/**
 * The runtime and limits a container starts with here. podman's default ulimits raise the hard limits,
 * which a process without CAP_SYS_RESOURCE (a sandboxed root) may not: ask for what podman itself has,
 * the open files of this process and at most pid_max processes. crun refuses hybrid cgroup v1/v2
 * hierarchies that runc accepts, so runc is tried when the default runtime fails.
 */
function limits(): string[] {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const hard = (name: string): number => Number(new RegExp(`^${name}\\s+\\S+\\s+(\\d+|unlimited)`, 'm').exec(text)?.[1] ?? 1024) || 1024;
  const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const files = hard('Max open files');
  const processes = Math.min(hard('Max processes'), pidMax);
  return ['--ulimit', `nofile=${files}:${files}`, '--ulimit', `nproc=${processes}:${processes}`];
}

/** What the pod's securityContext and its /tmp emptyDir amount to. */
function podOptions(pod: PodSpec): string[] {
  const [container] = pod.containers;
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);
  return [
    '--user',
    `${String(pod.securityContext.runAsUser)}:${String(pod.securityContext.runAsGroup)}`,
    '--read-only',
    '--tmpfs',
    '/tmp:mode=1777,size=16m',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    ...limits(),
  ];
}

function podmanRun(args: string[], timeoutMs = 120_000): Promise<Run> {
  return run(podman[0]!, [...podman.slice(1), ...args], { cwd: work, env: process.env, timeoutMs });
}

before(async () => {
  if (cannotRun !== undefined) return;
  const exe = join(work, 'socktune');
  const built = await run(process.execPath, [join(ROOT, 'scripts', 'exe', 'build.ts'), '--output', exe], {
    cwd: ROOT,
    env: process.env,
    timeoutMs: 180_000,
  });
  assert.equal(built.code, 0, `build:exe failed:\n${built.stdout}${built.stderr}`);
  const image = await run(process.execPath, [join(ROOT, 'scripts', 'image', 'build.ts'), '--exe', exe, '--tag', IMAGE], {
    cwd: ROOT,
    env: process.env,
    timeoutMs: 180_000,
  });
  assert.equal(image.code, 0, `build:image failed:\n${image.stdout}${image.stderr}`);
  const failures: string[] = [];
  for (const runtime of [[], ['--runtime', 'runc']]) {
    podman = ['podman', ...runtime];
    const probe = await podmanRun(['run', '--rm', ...limits(), IMAGE, '--version']);
    if (
      probe.code === 0 &&
      probe.stdout.trim() === (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
    ) {
      cannotRun = undefined;
      return;
    }
    failures.push(`${podman.join(' ')}: ${probe.stderr.trim().split('\n').at(-1) ?? `exit ${String(probe.code)}`}`);
  }
  cannotRun = `podman cannot start a container here (${failures.join('; ')})`;
});

after(async () => {
  if (created.length > 0) await podmanRun(['rm', '--force', '--time', '0', ...created]);
  if (missing === undefined) {
    await podmanRun(['network', 'rm', '--force', NETWORK]);
    await podmanRun(['rmi', '--force', IMAGE]);
  }
  rmSync(work, { recursive: true, force: true });
});

interface ServerEvent {
  event: string;
  client: string;
  bytesIn: number;
  outcome: string;
  service: string;
}

/** The `--json` server's events in its container log, once it has printed `count` of `event` (bounded). */
async function serverEvents(name: string, event: string, count: number): Promise<ServerEvent[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const logs = await podmanRun(['logs', name]);
    const events = logs.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as ServerEvent)
      .filter((entry) => entry.event === event);
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('podman: the image FROM scratch runs 3 rendered servers and 5 clients, client i on server i mod 3; collect merges the clients’ logs', async (t) => {
  if (cannotRun !== undefined) return t.skip(cannotRun);
  const clients = 5;
  const servers = 3;
  const size = 100;
  const rendered = await render([
    '--workload',
    'rr',
    '--clients',
    String(clients),
    '--servers',
    String(servers),
    '-t',
    '1',
    '-i',
    '0.5',
    '--size',
    String(size),
    '-C',
    '2',
    '--image',
    IMAGE,
    // The clients meet at server 0's start barrier, however long starting eight containers takes (here, pulling on a cluster).
    '--barrier-timeout',
    '120',
    '--test-id',
    `pod-${id}`,
  ]);
  for (const manifest of rendered.manifests) validateManifest(manifest);
  const serverPod = rendered.statefulSet.spec.template!.spec;
  const clientPod = rendered.job.spec.template!.spec;
  const server = containerOf(rendered.statefulSet);
  const client = containerOf(rendered.job);
  assert.equal(server.image, IMAGE);

  const network = await podmanRun(['network', 'create', '--subnet', `${SUBNET_PREFIX}.0/24`, NETWORK]);
  assert.equal(network.code, 0, network.stderr);
  const serviceName = rendered.service.metadata.name;
  // The StatefulSet's pods are <name>-0 .. <name>-2; under the headless Service each resolves to its own pod.
  const serverHosts = Array.from({ length: servers }, (_, index) => `${rendered.statefulSet.metadata.name}-${index}.${serviceName}`);
  const serverNames = serverHosts.map((_, index) => `${rendered.statefulSet.metadata.name}-${index}-${id}`);
  const serverAddresses = serverNames.map((_, index) => `${SUBNET_PREFIX}.${10 + index}`);
  const clientAddresses = Array.from({ length: clients }, (_, index) => `${SUBNET_PREFIX}.${100 + index}`);
  for (const [index, name] of serverNames.entries()) {
    created.push(name);
    const started = await podmanRun([
      'run',
      '--detach',
      '--name',
      name,
      '--network',
      NETWORK,
      '--ip',
      serverAddresses[index]!,
      ...podOptions(serverPod),
      IMAGE,
      ...server.args,
    ]);
    assert.equal(started.code, 0, started.stderr);
  }
  for (const name of serverNames) assert.equal((await serverEvents(name, 'listening', 1)).length, 1, `${name} listens`);

  // Every client pod resolves every server pod's name; its --pick $(JOB_COMPLETION_INDEX) chooses one.
  const clientNames = Array.from({ length: clients }, (_, index) => `${rendered.job.metadata.name}-${index}-${id}`);
  const runs = await Promise.all(
    clientNames.map((name, index) => {
      created.push(name);
      const env = { JOB_COMPLETION_INDEX: String(index) };
      return podmanRun([
        'run',
        '--name',
        name,
        '--network',
        NETWORK,
        '--ip',
        clientAddresses[index]!,
        ...serverHosts.flatMap((host, server) => ['--add-host', `${host}:${serverAddresses[server]!}`]),
        '--env',
        `JOB_COMPLETION_INDEX=${index}`,
        ...podOptions(clientPod),
        IMAGE,
        ...expandArgs(client.args, env),
      ]);
    }),
  );
  for (const [index, result] of runs.entries()) assert.equal(result.code, 0, `client ${index}: ${result.stderr}`);
  const results = runs.map((result) => {
    const document = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
      type: string;
      startAt: number;
      startedAt: string;
      barrier: { clients: number; clockOffsetMs: number };
      summary: { requests: number; sentRequests: number };
    };
    assert.equal(document.type, 'result');
    assert.equal(document.barrier.clients, clients);
    return document;
  });
  // One common start on server 0's clock; read on that clock, none started its traffic before it.
  const startAt = results[0]!.startAt;
  const starts = results.map((result) => Date.parse(result.startedAt) + result.barrier.clockOffsetMs);
  for (const [index, result] of results.entries()) {
    assert.equal(result.startAt, startAt);
    assert.ok(starts[index]! >= startAt - 1, `client ${index} started ${startAt - starts[index]!} ms early`);
  }
  t.diagnostic(`5 containers started within ${(Math.max(...starts) - Math.min(...starts)).toFixed(1)} ms on server 0's clock`);

  // The containers' logs, as `kubectl logs --prefix` prints the pods'.
  const logs = await Promise.all(clientNames.map((name) => podmanRun(['logs', name])));
  const logFile = join(work, 'clients.log');
  writeFileSync(logFile, `${logs.map((log, index) => prefixed(clientNames[index]!, 'client', `${log.stderr}${log.stdout}`)).join('\n')}\n`);
  const collected = await runCli(['k8s', 'collect', logFile, '--expect', String(clients), '--json']);
  assert.equal(collected.code, 0, collected.stderr);
  const merged = JSON.parse(collected.stdout) as {
    summary: { requests: number; sentRequests: number };
    sources: { label: string }[];
    clientsPerServer: { server: string; clients: number }[];
  };
  assertSchema(merged);
  assert.deepEqual(
    merged.sources.map((source) => source.label),
    clientNames,
  );
  assert.equal(
    merged.summary.requests,
    results.reduce((total, result) => total + result.summary.requests, 0),
  );
  // An exact, even spread, as collect reports it from the clients' results...
  assert.deepEqual(merged.clientsPerServer, [
    { server: `${serverHosts[0]}:5210`, clients: 2 },
    { server: `${serverHosts[1]}:5210`, clients: 2 },
    { server: `${serverHosts[2]}:5210`, clients: 1 },
  ]);
  // ... and as the servers saw it: server k ran the tests of clients k, k + 3, ..., from their own addresses.
  const tests = await Promise.all(
    serverNames.map(async (name, server) => {
      const expected = clientAddresses.filter((_, index) => index % servers === server);
      // Server 0 also logs each client that waited at its barrier.
      const all = await serverEvents(name, 'test', expected.length + (server === 0 ? clients : 0));
      const events = all.filter((event) => event.service !== 'barrier');
      assert.equal(all.length - events.length, server === 0 ? clients : 0);
      assert.deepEqual(events.map((event) => event.client).sort(), expected, `${name} ran the tests of clients ${expected.join(', ')}`);
      return events;
    }),
  );
  assert.deepEqual(
    tests.map((events) => events.length),
    [2, 2, 1],
  );
  for (const event of tests.flat()) assert.equal(event.outcome, 'done');
  assert.equal(
    tests.flat().reduce((total, event) => total + event.bytesIn, 0),
    merged.summary.sentRequests * size,
    'the servers received every request byte the merged clients sent',
  );
});
