// The rendered test, run without Kubernetes: M real servers on loopback started with the StatefulSet's
// command line, N clients with the Job's, as the kubelet would start them (JOB_COMPLETION_INDEX in
// their environment, $(VAR) expanded), each server's pod name standing for its loopback port, as DNS
// resolves it under the headless Service; their output becomes pod logs for `socktune k8s collect`,
// whose merge must add up to what the clients and the servers counted themselves.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertSchema,
  BIN,
  runCli,
  serverEvents,
  startServer,
  waitForServerEvents,
  type CliRun,
  type RunningServer,
} from '../../testkit/cli.ts';
import { validateManifest } from '../../testkit/k8s-schema.ts';
import { containerOf, expandArgs, flagValue, prefixed, render, startBalancer, withFlag, type Rendered } from '../../testkit/k8s.ts';

const work = mkdtempSync(join(tmpdir(), 'socktune-k8s-sim-'));
/** Every server a simulation started: a test that fails half-way still leaves none running. */
const started: RunningServer[] = [];
after(async () => {
  await Promise.all(started.map((server) => server.stop()));
  rmSync(work, { recursive: true, force: true });
});

interface TestEvent {
  peer: string;
  service: string;
  outcome: string;
  bytesIn: number;
  bytesOut: number;
}

interface Simulation {
  rendered: Rendered;
  servers: RunningServer[];
  /** Which server each client reached: the one its --pick chose (a ClusterIP: the balancer's, in turn). */
  assignment: number[];
  clients: CliRun[];
  /** The clients' result documents, as each printed it last. */
  results: { summary: Record<string, unknown>; startAt: number; startedAt: string; barrier: { clients: number; clockOffsetMs: number } }[];
  logFile: string;
  podNames: string[];
}

/** The StatefulSet's command line on loopback: every pod's port is a free one here. */
function startRenderedServer(args: string[]): Promise<RunningServer> {
  const local = withFlag(withFlag(args, '--bind', '127.0.0.1'), '-p', '0');
  return startServer([], () => spawn(process.execPath, [BIN, ...local], { stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * The Job's command line for completion index `index`, each name in its `-c` replaced by the address
 * it resolves to: every server pod's name by its loopback port, a ClusterIP Service's by the balancer.
 */
function clientCommand(rendered: Rendered, index: number, addresses: Map<string, string>): string[] {
  const args = expandArgs(containerOf(rendered.job).args, { JOB_COMPLETION_INDEX: String(index) });
  const list = flagValue(args, '-c')!.split(',');
  for (const name of list) assert.ok(addresses.has(name.split(':')[0]!), `${name}: a server pod's name, or the ClusterIP Service's`);
  const local = withFlag(args, '-c', list.map((name) => addresses.get(name.split(':')[0]!)!).join(','));
  const barrier = flagValue(args, '--barrier');
  return barrier === undefined ? local : withFlag(local, '--barrier', addresses.get(barrier.split(':')[0]!)!);
}

/**
 * Under a headless Service the client reaches the server its --pick chooses from the servers' names
 * (client i → server i mod M); a ClusterIP gives every client the same virtual address, behind which
 * kube-proxy (here: a balancer) hands each connection to a pod in turn.
 */
async function simulate(workload: string, flags: string[], clients: number, servers: number): Promise<Simulation> {
  const raw = flags.includes('--raw');
  const testId = `sim-${workload}${raw ? '-raw' : ''}`;
  const rendered = await render([
    '--workload',
    workload,
    '--clients',
    String(clients),
    '--servers',
    String(servers),
    '-t',
    '0.4',
    '-i',
    '0.2',
    // Bare ports start at a fixed time: the margin covers starting the servers and the clients' processes, as image pulls would on a
    // cluster, and a busy machine may start a client later than it allows: it still runs (with a warning), so the sums stay checkable.
    // Through the control server the clients meet at server 0's barrier instead.
    ...(raw ? ['--start-margin', '2', '--start-late-tolerance', '600'] : ['--barrier-timeout', '60']),
    '--test-id',
    testId,
    ...flags,
  ]);
  for (const manifest of rendered.manifests) validateManifest(manifest);
  const running = await Promise.all(Array.from({ length: servers }, () => startRenderedServer(containerOf(rendered.statefulSet).args)));
  started.push(...running);
  const balancer = rendered.service.spec.clusterIP === 'None' ? undefined : await startBalancer(running.map((server) => server.port));
  const serviceName = rendered.service.metadata.name;
  const addresses = new Map(
    balancer === undefined
      ? running.map((server, index) => [`${serviceName}-${index}.${serviceName}`, `127.0.0.1:${server.port}`])
      : [[serviceName, `${balancer.host}:${balancer.port}`]],
  );
  const assignment = Array.from({ length: clients }, (_, index) => index % servers);
  let runs: CliRun[];
  try {
    runs = await Promise.all(
      assignment.map((_, index) =>
        runCli(clientCommand(rendered, index, addresses), 60_000, undefined, { JOB_COMPLETION_INDEX: String(index) }),
      ),
    );
  } finally {
    await balancer?.close();
  }
  const podNames = runs.map((_, index) => `${rendered.job.metadata.name}-${index}-abcde`);
  const results = runs.map((run, index) => {
    assert.equal(run.code, 0, `client ${index}: ${run.stderr}`);
    const lines = run.stdout.trim().split('\n');
    const last = JSON.parse(lines.at(-1)!) as Simulation['results'][number] & { type: string };
    assert.equal(last.type, 'result', 'the last line of a client pod’s log is its result');
    return last;
  });
  // kubectl logs --prefix prints each pod's log whole, one pod after the other.
  const logFile = join(work, `${testId}.log`);
  writeFileSync(logFile, `${runs.map((run, index) => prefixed(podNames[index]!, 'client', `${run.stderr}${run.stdout}`)).join('\n')}\n`);
  return { rendered, servers: running, assignment, clients: runs, results, logFile, podNames };
}

async function collect(
  simulation: Simulation,
): Promise<{ summary: Record<string, unknown>; sources: { label: string }[]; merged: string }> {
  const run = await runCli(['k8s', 'collect', simulation.logFile, '--expect', String(simulation.clients.length), '--json']);
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as { summary: Record<string, unknown>; sources: { label: string }[]; merged: string };
  assertSchema(merged);
  assert.deepEqual(
    merged.sources.map((source) => source.label),
    simulation.podNames,
  );
  return merged;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** Each server's `test` events: one per client sent to it, every one done. */
async function serverTests(simulation: Simulation): Promise<TestEvent[][]> {
  return Promise.all(
    simulation.servers.map(async (server, index) => {
      const expected = simulation.assignment.filter((assigned) => assigned === index).length;
      // Server 0 also logs each client that waited at its start barrier.
      const atBarrier = index === 0 && flagValue(containerOf(simulation.rendered.job).args, '--barrier') !== undefined;
      const all = await waitForServerEvents<TestEvent>(server, 'test', expected + (atBarrier ? simulation.assignment.length : 0));
      const events = all.filter((event) => event.service !== 'barrier');
      assert.equal(events.length, expected, server.stdout());
      assert.equal(all.length - events.length, atBarrier ? simulation.assignment.length : 0);
      for (const event of all) {
        assertSchema(event);
        assert.equal(event.outcome, 'done');
      }
      return events;
    }),
  );
}

async function stopAll(servers: RunningServer[]): Promise<void> {
  const codes = await Promise.all(servers.map((server) => server.stop()));
  assert.deepEqual(
    codes,
    servers.map(() => 0),
  );
}

test('simulated rr: 3 clients × 2 control servers; the merged requests are the clients’ sum and what the servers received', async () => {
  const simulation = await simulate('rr', ['--size', '100', '-C', '2', '--depth', '2'], 3, 2);
  try {
    // One common start on server 0's clock; none started its traffic before it, read on that clock.
    const [startAt] = new Set(simulation.results.map((result) => result.startAt));
    for (const result of simulation.results) {
      assert.equal(result.startAt, startAt);
      assert.equal(result.barrier.clients, 3);
      assert.ok(Date.parse(result.startedAt) + result.barrier.clockOffsetMs >= startAt! - 1, JSON.stringify(result.barrier));
    }
    const merged = await collect(simulation);
    assert.equal(merged.merged, 'rr');
    const summaries = simulation.results.map((result) => result.summary as { requests: number; sentRequests: number });
    assert.equal(merged.summary.requests, sum(summaries.map((summary) => summary.requests)));
    assert.equal(merged.summary.sentRequests, sum(summaries.map((summary) => summary.sentRequests)));
    assert.equal((merged.summary.latency as { count: number }).count, merged.summary.requests);
    const events = (await serverTests(simulation)).flat();
    // Every request byte the clients sent, and no other, reached a server.
    assert.equal(sum(events.map((event) => event.bytesIn)), merged.summary.sentRequests * 100);
  } finally {
    await stopAll(simulation.servers);
  }
});

test('simulated rr --raw: bare echo ports behind a ClusterIP; the merged requests are what the servers counted at SIGTERM', async () => {
  const simulation = await simulate('rr', ['--raw', '--size', '64', '-C', '3'], 4, 2);
  assert.equal(simulation.rendered.service.spec.type, 'ClusterIP');
  const merged = await collect(simulation);
  await stopAll(simulation.servers);
  const summaries = simulation.results.map((result) => result.summary as { requests: number; sentRequests: number });
  assert.equal(merged.summary.requests, sum(summaries.map((summary) => summary.requests)));
  const stopped = simulation.servers.map((server) => {
    const [event] = serverEvents<{ metrics: { connectionsTotal: number; bytesIn: number } }>(server, 'stopped');
    assert.ok(event, server.stdout());
    assertSchema(event);
    return event.metrics;
  });
  // Every connection went through the balancer, and each server took some.
  assert.equal(sum(stopped.map((metrics) => metrics.connectionsTotal)), 4 * 3);
  for (const metrics of stopped) assert.ok(metrics.connectionsTotal > 0);
  assert.equal(sum(stopped.map((metrics) => metrics.bytesIn)), (merged.summary.sentRequests as number) * 64);
});

test('simulated stream, crr and msg: each merges to the clients’ sums; the servers ran every test', async () => {
  for (const [workload, flags, count] of [
    ['stream', ['--size', '16K', '-C', '2'], (summary: Record<string, unknown>) => (summary.receiver as { bytes: number }).bytes],
    ['crr', ['--size', '32', '-C', '2'], (summary: Record<string, unknown>) => summary.transactions as number],
    ['msg', ['--size', '64', '-C', '2', '--echo', '--depth', '8'], (summary: Record<string, unknown>) => summary.messagesSent as number],
  ] as const) {
    const simulation = await simulate(workload, [...flags], 2, 2);
    try {
      const merged = await collect(simulation);
      assert.equal(merged.merged, workload);
      assert.equal(count(merged.summary), sum(simulation.results.map((result) => count(result.summary))), workload);
      const events = (await serverTests(simulation)).flat();
      if (workload === 'stream')
        // The server's own byte counts are the receiver's: what the merge reports is what the servers read.
        assert.equal(sum(events.map((event) => event.bytesIn)), count(merged.summary));
    } finally {
      await stopAll(simulation.servers);
    }
  }
});

test('why the control server sits behind a headless Service: through a ClusterIP its data connections miss the pod', async () => {
  // On a cluster the virtual IP is no address of the pod; here the pod listens on 127.0.0.1 and the VIP is 127.0.0.2.
  const server = await startServer();
  const balancer = await startBalancer([server.port]);
  try {
    const run = await runCli(['rr', '-c', balancer.host, '-p', String(balancer.port), '-t', '0.3']);
    // The control connection went through; the data connection went to the VIP and the test's own port, which no Service forwards.
    assert.equal(balancer.handed[0], 1);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /SOCKTUNE_ERR_REFUSED: connect to 127\.0\.0\.2:\d+/);
  } finally {
    await balancer.close();
    await server.stop();
  }
});

test('a client pod that starts after --start-at + tolerance refuses to run, and collect names it', async () => {
  const rendered = await render([
    '--workload',
    'rr',
    '--raw',
    '--clients',
    '2',
    '--start-margin',
    '1',
    '--start-late-tolerance',
    '0.2',
    '--test-id',
    'late',
  ]);
  const args = expandArgs(containerOf(rendered.job).args, { JOB_COMPLETION_INDEX: '1' });
  const startAt = Number(flagValue(args, '--start-at'));
  // This pod was scheduled late: it starts half a second after the time it was given.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt + 500 - Date.now())));
  const late = await runCli(withFlag(args, '-c', '127.0.0.1:7'), 30_000, undefined, { JOB_COMPLETION_INDEX: '1' });
  assert.equal(late.code, 2, late.stderr);
  assert.match(
    late.stderr,
    /^socktune: SOCKTUNE_ERR_USAGE: --start-at \d+ \(.*Z\) was \d+\.\d{3} s ago, later than --start-late-tolerance 0\.2 s: this run would not measure the same seconds as the others; not starting/,
  );
  assert.equal(late.stdout, '', 'no result line');
  const log = join(work, 'late.log');
  writeFileSync(log, `${prefixed('socktune-late-clients-1-qwert', 'client', late.stderr)}\n`);
  const collected = await runCli(['k8s', 'collect', log, '--expect', '1']);
  assert.equal(collected.code, 2);
  assert.match(
    collected.stderr,
    /socktune-late-clients-1-qwert: no result line; its log ends with "socktune: SOCKTUNE_ERR_USAGE: --start-at/,
  );
});

test('--start-at within --start-late-tolerance starts at once with a warning; the tolerance goes with --start-at', async () => {
  const server = await startServer();
  try {
    const base = ['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.2', '--json'];
    const within = await runCli([...base, '--start-at', String(Date.now() - 300), '--start-late-tolerance', '5']);
    assert.equal(within.code, 0, within.stderr);
    assert.match(within.stderr, /warning: --start-at was \d+ ms ago: starting now/);
    const byDefault = await runCli([...base, '--start-at', String(Date.now() - 3000)]);
    assert.equal(byDefault.code, 2);
    assert.match(byDefault.stderr, /later than --start-late-tolerance 1 s/);
    const alone = await runCli([...base, '--start-late-tolerance', '1']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--start-late-tolerance goes with --start-at/);
    const negative = await runCli([...base, '--start-at', String(Date.now() + 1000), '--start-late-tolerance', '-1']);
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /--start-late-tolerance takes a duration/);
  } finally {
    await server.stop();
  }
});
