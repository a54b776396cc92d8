import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, runInProcess } from '../../testkit/cli.ts';
import { asList, renderTest, WORKLOADS, type RenderOptions } from '../../src/k8s/render.ts';
import { validateManifest } from '../../testkit/k8s-schema.ts';
import { containerOf, flagValue, render, type Manifest } from '../../testkit/k8s.ts';

const MODES: { name: string; flags: string[] }[] = [
  { name: 'control server, headless Service', flags: [] },
  { name: '--raw, ClusterIP Service', flags: ['--raw'] },
  { name: '--raw --headless', flags: ['--raw', '--headless'] },
];

/** Flags that fit each workload, so that every one of its own flags is rendered. */
const WORKLOAD_FLAGS: Record<(typeof WORKLOADS)[number], string[]> = {
  rr: ['--size', '1K', '-C', '4', '--depth', '8', '--rate', '5000'],
  crr: ['--size', '200', '-C', '16'],
  stream: ['--size', '128K', '-C', '4'],
  msg: ['--size', '64', '-C', '2', '--echo', '--depth', '32'],
};

const COMMON = [
  '--clients',
  '5',
  '--servers',
  '3',
  '-t',
  '30',
  '--omit',
  '2',
  '-i',
  '0.5',
  '-w',
  '256K',
  '--io-model',
  'workers',
  '--workers',
  '2',
  '-n',
  'perf',
  '--image',
  'registry.example/socktune:1.2.3',
  '--node-selector',
  'pool=bench',
  '--client-node-selector',
  'zone=a',
  '--server-node-selector',
  'zone=b,disk=ssd',
];

for (const workload of WORKLOADS) {
  for (const mode of MODES) {
    test(`render ${workload}, ${mode.name}: every object validates against the Kubernetes API schemas, in YAML and as a JSON List`, async () => {
      const args = ['--workload', workload, ...WORKLOAD_FLAGS[workload], ...COMMON, ...mode.flags, '--test-id', `t-${workload}`];
      const rendered = await render(args);
      for (const manifest of rendered.manifests) validateManifest(manifest);
      assert.deepEqual(
        rendered.manifests.map((manifest) => manifest.kind),
        ['Service', 'Deployment', 'Job'],
      );
      const list = await runCli(['k8s', 'render', ...args, '--json']);
      assert.equal(list.code, 0, list.stderr);
      const document = JSON.parse(list.stdout) as { apiVersion: string; kind: string; items: Manifest[] };
      assert.equal(document.apiVersion, 'v1');
      assert.equal(document.kind, 'List');
      for (const item of document.items) validateManifest(item);
      assert.match(list.stderr, /clean up: kubectl delete -n perf deployment,service,job -l socktune\.io\/test=t-/);

      const raw = mode.flags.includes('--raw');
      const { service, job, deployment } = rendered;
      const headless = !raw || mode.flags.includes('--headless');
      assert.equal(service.spec.clusterIP, headless ? 'None' : undefined);
      assert.equal(service.spec.type, headless ? undefined : 'ClusterIP');
      const client = containerOf(job).args;
      const server = containerOf(deployment).args;
      assert.equal(client[0], workload);
      if (raw) {
        assert.deepEqual(client.slice(1, 4), ['--raw', '-c', `socktune-t-${workload}-server:5210`]);
        assert.deepEqual(server.slice(0, 2), ['server', 'service']);
        // The bare server takes the I/O model and -w itself; a raw client only its own socket options.
        assert.equal(flagValue(server, '--io-model'), 'workers');
        assert.equal(flagValue(client, '--io-model'), undefined);
      } else {
        assert.deepEqual(client.slice(1, 5), ['-c', `socktune-t-${workload}-server`, '-p', '5210']);
        assert.deepEqual(server, ['server', '--bind', '0.0.0.0', '-p', '5210', '--json']);
        assert.equal(flagValue(client, '--io-model'), 'workers');
      }
      assert.equal(flagValue(client, '-w'), '256K');
      // The real parsers take both command lines (--help answers once the flags parse), in this process.
      for (const line of [client, server]) {
        const help = await runInProcess([...line, '--help']);
        assert.equal(help.code, 0, `${line.join(' ')}: ${help.stderr}`);
      }
    });
  }
}

test('render rr: the Job starts every client together, fails on one failure, cleans up; pods run locked down', async () => {
  const before = Date.now();
  const rendered = await render([
    '--workload',
    'rr',
    '--clients',
    '4',
    '--servers',
    '2',
    '-t',
    '20',
    '--test-id',
    'demo',
    '--start-margin',
    '90',
  ]);
  const after = Date.now();
  const { job, deployment, service, comments } = rendered;
  assert.equal(job.metadata.name, 'socktune-demo-clients');
  assert.equal(service.metadata.name, 'socktune-demo-server');
  assert.equal(job.metadata.namespace, undefined, "no -n: kubectl's current namespace");
  assert.deepEqual(
    { ...job.spec, template: undefined },
    {
      completionMode: 'Indexed',
      completions: 4,
      parallelism: 4,
      backoffLimit: 0,
      activeDeadlineSeconds: 90 + 20 + 120,
      ttlSecondsAfterFinished: 3600,
      template: undefined,
    },
  );
  assert.equal(deployment.spec.replicas, 2);
  const args = containerOf(job).args;
  const startAt = Number(flagValue(args, '--start-at'));
  assert.ok(startAt >= before + 90_000 && startAt <= after + 90_000, 'start = now + margin');
  assert.equal(job.metadata.annotations!['socktune.io/start-at'], String(startAt));
  assert.deepEqual(args, [
    'rr',
    '-c',
    'socktune-demo-server',
    '-p',
    '5210',
    '-t',
    '20',
    '-i',
    '1',
    '--start-at',
    String(startAt),
    '--start-late-tolerance',
    '1',
    '--ndjson',
  ]);
  for (const manifest of [deployment, job]) {
    const pod = manifest.spec.template!.spec;
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(containerOf(manifest).securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    const labels = manifest.spec.template!.metadata.labels;
    assert.equal(labels['app.kubernetes.io/name'], 'socktune');
    assert.equal(labels['socktune.io/test'], 'demo');
    assert.deepEqual(manifest.metadata.labels, labels);
    // Clients and servers keep off each other's nodes.
    const other = manifest.kind === 'Job' ? 'server' : 'client';
    assert.deepEqual(pod.affinity!.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution, [
      {
        labelSelector: { matchLabels: { 'socktune.io/test': 'demo', 'app.kubernetes.io/component': other } },
        topologyKey: 'kubernetes.io/hostname',
      },
    ]);
  }
  assert.equal(job.spec.template!.spec.restartPolicy, 'Never');
  assert.deepEqual(containerOf(job).resources, { requests: { cpu: '1', memory: '512Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  assert.deepEqual(containerOf(deployment).resources, { requests: { cpu: '2', memory: '1Gi' }, limits: { cpu: '2', memory: '1Gi' } });
  assert.equal(containerOf(job).image, 'localhost/socktune:0.1.0');
  assert.ok(comments.includes('clean up: kubectl delete deployment,service,job -l socktune.io/test=demo'), comments.join('\n'));
  assert.ok(
    comments.includes('collect:  kubectl logs -l job-name=socktune-demo-clients --prefix --tail=-1 | socktune k8s collect --expect 4'),
    comments.join('\n'),
  );
});

test('render: placement, resources, auth, a long or crowded test, and client flags after --', async () => {
  const rendered = await render([
    '--workload',
    'stream',
    '--clients',
    '40',
    '-t',
    '900',
    '--anti-affinity',
    'preferred',
    '--client-cpu',
    '500m',
    '--client-memory',
    '256Mi',
    '--no-cpu-limit',
    '--auth-secret',
    'socktune-token',
    '--ttl',
    '10m',
    '--active-deadline',
    '2000',
    '--test-id',
    'x1',
    '--',
    '-R',
    '--verify',
  ]);
  for (const manifest of rendered.manifests) validateManifest(manifest);
  const { job, deployment } = rendered;
  assert.equal(job.spec.ttlSecondsAfterFinished, 600);
  assert.equal(job.spec.activeDeadlineSeconds, 2000);
  assert.deepEqual(containerOf(job).resources, { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '256Mi' } });
  const clientArgs = containerOf(job).args;
  assert.deepEqual(clientArgs.slice(-3), ['--ndjson', '-R', '--verify']);
  // 40 clients may all land on the one server; a 900 s test outlasts the server's default 600 s.
  assert.deepEqual(containerOf(deployment).args.slice(-4), ['--max-tests', '40', '--max-duration', '970']);
  for (const manifest of [job, deployment]) {
    assert.deepEqual(containerOf(manifest).env, [
      { name: 'SOCKTUNE_AUTH_TOKEN', valueFrom: { secretKeyRef: { name: 'socktune-token', key: 'token' } } },
    ]);
    const antiAffinity = manifest.spec.template!.spec.affinity!.podAntiAffinity;
    assert.equal(antiAffinity.requiredDuringSchedulingIgnoredDuringExecution, undefined);
    assert.equal(antiAffinity.preferredDuringSchedulingIgnoredDuringExecution!.length, 2);
  }
  const none = await render(['--workload', 'rr', '--anti-affinity', 'none']);
  assert.equal(none.job.spec.template!.spec.affinity, undefined);
});

test('renderTest is pure: the CLI prints what it returns for the same test id and clock', async () => {
  const rendered = await render(['--workload', 'msg', '--clients', '3', '--size', '100', '--test-id', 'same', '--start-margin', '30']);
  const startAt = Number(flagValue(containerOf(rendered.job).args, '--start-at'));
  const options: RenderOptions = { workload: 'msg', image: 'localhost/socktune:0.1.0', clients: 3, size: 100, startMarginSec: 30 };
  const pure = renderTest(options, { testId: 'same', now: startAt - 30_000 });
  assert.deepEqual(rendered.manifests, pure.manifests);
  assert.deepEqual(rendered.comments, pure.notes);
  assert.deepEqual(renderTest(options, { testId: 'same', now: startAt - 30_000 }), pure);
  assert.deepEqual((asList(pure) as { items: unknown[] }).items, pure.manifests);
});

test('render refuses what would not run, naming the flag, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [[], /--workload rr\|crr\|stream\|msg/],
    [['--workload', 'udp'], /--workload takes one of rr, crr, stream, msg, got "udp"/],
    [['--workload', 'crr', '--depth', '4'], /--depth is for rr and msg --echo/],
    [['--workload', 'msg', '--depth', '4'], /--depth is for msg with --echo/],
    [['--workload', 'stream', '--rate', '10'], /--rate is for rr/],
    [['--workload', 'rr', '--headless'], /--headless is for --raw: the control server is always behind a headless Service/],
    [['--workload', 'rr', '--raw', '--auth-secret', 's'], /--auth-secret: a bare service port \(--raw\) has no authentication/],
    [['--workload', 'rr', '-p', '80'], /-p must be an integer from 1024 to 65535/],
    [['--workload', 'rr', '--node-selector', 'pool'], /--node-selector takes key=value/],
    [['--workload', 'rr', '--node-selector', 'pool=a b'], /--node-selector must be node labels/],
    [['--workload', 'rr', '--client-cpu', 'lots'], /--client-cpu\/--client-memory must be \{ cpu, memory \} as Kubernetes quantities/],
    [['--workload', 'rr', '--test-id', 'Bad_Id'], /the test id must be 1 to 20 lowercase letters/],
    [['--workload', 'rr', '--anti-affinity', 'maybe'], /--anti-affinity takes one of required, preferred, none/],
    [['--workload', 'rr', '--workers', '2'], /--workers needs --io-model 'workers'/],
    [['--workload', 'rr', 'rr'], /the client flags after -- must start with a flag, got "rr"/],
    [['--workload', 'rr', '--verify'], /--verify is not a flag of socktune k8s render/],
  ];
  await Promise.all(
    cases.map(async ([args, message]) => {
      const run = await runInProcess(['k8s', 'render', ...args]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /^socktune: SOCKTUNE_ERR_USAGE: /);
      assert.match(run.stderr, message, args.join(' '));
    }),
  );
  const bare = await runInProcess(['k8s']);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /choose a mode: socktune k8s render or socktune k8s collect/);
  const help = await runInProcess(['k8s', '--help']);
  assert.match(help.stdout, /Modes:\n {2}k8s render .*\n {2}k8s collect /);
});
