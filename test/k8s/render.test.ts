import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, runInProcess } from '../../testkit/cli.ts';
import { pickHost } from '../../src/cli/host-pick.ts';
import { asList, renderTest } from '../../src/k8s/render.ts';
import { WORKLOADS, type RenderOptions } from '../../src/k8s/render-options.ts';
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
  '--network-policy',
];

/** The hosts of servers 0 to M-1 of test `id`: each pod's name under the headless Service. */
const hostsOf = (id: string, servers: number): string[] =>
  Array.from({ length: servers }, (_, index) => `socktune-${id}-server-${index}.socktune-${id}-server`);

/** A rendered server command line as the real parser takes it (its --help answers once the flags parse). */
async function assertServerLineParses(line: string[]): Promise<void> {
  const help = await runInProcess([...line, '--help']);
  assert.equal(help.code, 0, `${line.join(' ')}: ${help.stderr}`);
}

for (const workload of WORKLOADS) {
  for (const mode of MODES) {
    test(`render ${workload}, ${mode.name}: every object validates against the Kubernetes API schemas, in YAML and as a JSON List`, async () => {
      const args = ['--workload', workload, ...WORKLOAD_FLAGS[workload], ...COMMON, ...mode.flags, '--test-id', `t-${workload}`];
      const rendered = await render(args);
      for (const manifest of rendered.manifests) validateManifest(manifest);
      assert.deepEqual(
        rendered.manifests.map((manifest) => manifest.kind),
        ['Service', 'StatefulSet', 'NetworkPolicy', 'Job'],
      );
      const list = await runCli(['k8s', 'render', ...args, '--json']);
      assert.equal(list.code, 0, list.stderr);
      const document = JSON.parse(list.stdout) as { apiVersion: string; kind: string; items: Manifest[] };
      assert.equal(document.apiVersion, 'v1');
      assert.equal(document.kind, 'List');
      for (const item of document.items) validateManifest(item);
      assert.match(list.stderr, /clean up: kubectl delete -n perf statefulset,service,job,networkpolicy -l socktune\.io\/test=t-/);

      const raw = mode.flags.includes('--raw');
      const { service, job, statefulSet } = rendered;
      const headless = !raw || mode.flags.includes('--headless');
      assert.equal(service.spec.clusterIP, headless ? 'None' : undefined);
      assert.equal(service.spec.type, headless ? undefined : 'ClusterIP');
      // Server k is the StatefulSet's pod <name>-k, resolved by the Service that governs it.
      assert.equal(statefulSet.spec.serviceName, service.metadata.name);
      assert.equal(statefulSet.spec.podManagementPolicy, 'Parallel');
      const client = containerOf(job).args;
      const server = containerOf(statefulSet).args;
      assert.equal(client[0], workload);
      const hosts = hostsOf(`t-${workload}`, 3);
      if (raw && !headless) assert.deepEqual(client.slice(1, 4), ['--raw', '-c', `socktune-t-${workload}-server:5210`]);
      else if (raw)
        assert.deepEqual(client.slice(1, 6), [
          '--raw',
          '-c',
          hosts.map((host) => `${host}:5210`).join(','),
          '--pick',
          '$(JOB_COMPLETION_INDEX)',
        ]);
      else assert.deepEqual(client.slice(1, 7), ['-c', hosts.join(','), '-p', '5210', '--pick', '$(JOB_COMPLETION_INDEX)']);
      if (raw) {
        assert.deepEqual(server.slice(0, 2), ['server', 'service']);
        // The bare server takes the I/O model and -w itself; a raw client only its own socket options.
        assert.equal(flagValue(server, '--io-model'), 'workers');
        assert.equal(flagValue(client, '--io-model'), undefined);
      } else {
        assert.deepEqual(server, ['server', '--bind', '0.0.0.0', '-p', '5210', '--json', '--data-ports', '20000-20999']);
        assert.equal(flagValue(client, '--io-model'), 'workers');
      }
      assert.equal(flagValue(client, '-w'), '256K');
      // The real parsers take both command lines (--help answers once the flags parse), in this process.
      const help = await runInProcess([...client, '--help']);
      assert.equal(help.code, 0, `${client.join(' ')}: ${help.stderr}`);
      await assertServerLineParses(server);
    });
  }
}

test('render rr: the Job starts every client together at server 0’s barrier, fails on one failure, cleans up; pods run locked down', async () => {
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
    '--barrier-timeout',
    '90',
  ]);
  const { job, statefulSet, service, comments } = rendered;
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
  assert.equal(statefulSet.spec.replicas, 2);
  const args = containerOf(job).args;
  assert.equal(job.metadata.annotations!['socktune.io/barrier'], `${hostsOf('demo', 2)[0]}:5210 demo 4`);
  assert.deepEqual(args, [
    'rr',
    '-c',
    hostsOf('demo', 2).join(','),
    '-p',
    '5210',
    '--pick',
    '$(JOB_COMPLETION_INDEX)',
    '-t',
    '20',
    '-i',
    '1',
    '--barrier',
    `${hostsOf('demo', 2)[0]}:5210`,
    '--barrier-clients',
    '4',
    '--barrier-group',
    'demo',
    '--barrier-timeout',
    '90',
    '--ndjson',
  ]);
  for (const manifest of [statefulSet, job]) {
    const pod = manifest.spec.template!.spec;
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/arch': 'amd64' }, 'the image is built for amd64');
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
  assert.deepEqual(containerOf(statefulSet).resources, { requests: { cpu: '2', memory: '1Gi' }, limits: { cpu: '2', memory: '1Gi' } });
  // Ready once the server listens: its name resolves, and kube-proxy sends it connections, from then on.
  assert.deepEqual(containerOf(statefulSet).readinessProbe, { tcpSocket: { port: 'socktune' }, periodSeconds: 5 });
  assert.deepEqual(containerOf(statefulSet).ports, [{ name: 'socktune', containerPort: 5210, protocol: 'TCP' }]);
  assert.equal(containerOf(job).readinessProbe, undefined);
  assert.equal(containerOf(job).image, 'localhost/socktune:0.1.0');
  // No registry serves a localhost/ name: said in the notes and on stderr.
  const warning =
    /^warning: --image localhost\/socktune:0\.1\.0 is a local name that no registry serves: a node runs it only if it already has it/m;
  assert.match(comments.join('\n'), warning);
  assert.match(rendered.run.stderr, warning);
  assert.ok(comments.includes('spread:   client i reaches server i mod 2: 2, 2 client(s)'), comments.join('\n'));
  assert.ok(comments.includes('clean up: kubectl delete statefulset,service,job -l socktune.io/test=demo'), comments.join('\n'));
  // A wait that ends when the Job fails too (kubectl wait --for=condition=complete would wait out its timeout).
  assert.ok(
    comments.includes(
      'wait:     while s=$(kubectl get job/socktune-demo-clients -o \'jsonpath={.status.conditions[?(@.status=="True")].type}\') ' +
        '&& ! echo "$s" | grep -qE \'Complete|Failed\'; do sleep 5; done; kubectl get job/socktune-demo-clients',
    ),
    comments.join('\n'),
  );
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
  const { job, statefulSet } = rendered;
  assert.equal(job.spec.ttlSecondsAfterFinished, 600);
  assert.equal(job.spec.activeDeadlineSeconds, 2000);
  assert.deepEqual(containerOf(job).resources, { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '256Mi' } });
  const clientArgs = containerOf(job).args;
  assert.deepEqual(clientArgs.slice(-3), ['--ndjson', '-R', '--verify']);
  // The one server runs all 40 clients' tests (from one address, behind SNAT); a 900 s test outlasts the server's default 600 s.
  assert.deepEqual(containerOf(statefulSet).args.slice(-6), ['--max-tests', '40', '--max-per-client', '80', '--max-duration', '970']);
  assert.equal(flagValue(containerOf(job).args, '--pick'), undefined, 'one server: nothing to pick');
  for (const manifest of [job, statefulSet]) {
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
  const rendered = await render([
    '--workload',
    'msg',
    '--raw',
    '--clients',
    '3',
    '--size',
    '100',
    '--test-id',
    'same',
    '--start-margin',
    '30',
  ]);
  const startAt = Number(flagValue(containerOf(rendered.job).args, '--start-at'));
  const options: RenderOptions = {
    workload: 'msg',
    image: 'localhost/socktune:0.1.0',
    raw: true,
    clients: 3,
    size: 100,
    startMarginSec: 30,
  };
  const pure = renderTest(options, { testId: 'same', now: startAt - 30_000, nameOption: (key) => `--${key}` });
  assert.deepEqual(rendered.manifests, pure.manifests);
  assert.deepEqual(rendered.comments, pure.notes);
  assert.deepEqual(renderTest(options, { testId: 'same', now: startAt - 30_000, nameOption: (key) => `--${key}` }), pure);
  assert.deepEqual((asList(pure) as { items: unknown[] }).items, pure.manifests);
});

test('render refuses what would not run, naming the flag, exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [[], /--workload rr\|crr\|stream\|msg/],
    [['--workload', 'udp'], /--workload takes one of rr, crr, stream, msg, got "udp"/],
    [['--workload', 'crr', '--depth', '4'], /--depth is for rr and msg --echo/],
    [['--workload', 'rr', '--start-margin', '30'], /--start-margin is for --raw tests .* start barrier on server 0 \(--barrier-timeout\)/],
    [['--workload', 'rr', '--raw', '--barrier-timeout', '30'], /--barrier-timeout: bare service ports \(--raw\) have no start barrier/],
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
    [
      ['--workload', 'rr', '--run-as-user', '0'],
      /--run-as-user takes a UID from 1 to 2147483647 \(the pods run as non-root\), or unset, got "0"/,
    ],
    [['--workload', 'rr', '--run-as-user', 'nobody'], /--run-as-user takes a UID .* got "nobody"/],
    [['--workload', 'rr', '--arch', 's390x'], /--arch takes one of amd64, arm64, any/],
    [
      ['--workload', 'rr', '--node-selector', 'kubernetes.io/arch=arm64'],
      /a node selector sets kubernetes\.io\/arch; say the architecture with --arch/,
    ],
    [
      ['--workload', 'rr', '--raw', '--data-ports', '20000-20999'],
      /--data-ports: a bare service port \(--raw\) has no data ports, only -p/,
    ],
    [['--workload', 'rr', '--data-ports', '20000'], /--data-ports takes a range of ports LO-HI/],
    [['--workload', 'rr', '--data-ports', '900-999'], /--data-ports must be \{ first, last \} ports from 1024 to 65535/],
    [['--workload', 'rr', '--data-ports', '20999-20000'], /--data-ports must be \{ first, last \} ports from 1024 to 65535, first <= last/],
    [['--workload', 'rr', '-p', '20500', '--network-policy'], /--data-ports 20000-20999 holds the control port -p 20500/],
    [
      ['--workload', 'rr', '--clients', '200', '--data-ports', '20000-20099'],
      /--data-ports 20000-20099 has 100 ports; a server may run 200 tests at once, each on a port of its own/,
    ],
    [['--workload', 'rr', '--data-ports', '20000-20009'], /has 10 ports; a server may run 16 tests at once/],
    [
      ['--workload', 'rr', '--clients', '10000', '-C', '10000'],
      /--clients 10000 over --servers 1 need --max-connections 100000000 on a server, more than socktune server takes \(10000000\): add servers/,
    ],
    [['--workload', 'rr', '--pause-image', 'pause:1'], /--pause-image goes with --pre-pull/],
    [['--pre-pull', '--clients', '3'], /--clients describe a test; --pre-pull renders the pre-pull DaemonSet alone/],
    [['--pre-pull', '--', '-R'], /client flags after -- describe a test/],
    [['--pre-pull'], /--image localhost\/socktune:0\.1\.0 is a local name that no registry serves, so there is nothing to pull/],
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

/** The options renderTest takes for `clients` over `servers`, with `more`. */
const shapeOf = (clients: number, servers: number, more: Partial<RenderOptions> = {}): RenderOptions => ({
  workload: 'rr',
  image: 'registry.example/socktune:1.2.3',
  clients,
  servers,
  ...more,
});

test('the spread is exact: client i reaches server i mod M, as --pick reads the rendered list, for several N and M', () => {
  for (const [clients, servers] of [
    [1, 1],
    [5, 3],
    [7, 7],
    [3, 5],
    [100, 7],
    [1000, 64],
  ] as const) {
    for (const mode of [{}, { raw: true, headless: true }] as const) {
      const rendered = renderTest(shapeOf(clients, servers, mode), { testId: 'even', now: 0 });
      const job = rendered.manifests.at(-1) as unknown as Manifest;
      const args = containerOf(job).args;
      const list = flagValue(args, '-c')!;
      const expected = hostsOf('even', servers).map((host) => ('raw' in mode ? `${host}:5210` : host));
      assert.deepEqual(list.split(','), expected);
      assert.equal(flagValue(args, '--pick'), servers > 1 ? '$(JOB_COMPLETION_INDEX)' : undefined);
      const reached = new Map<string, number[]>();
      for (let index = 0; index < clients; index++) {
        const host = pickHost(list, String(index));
        reached.set(host, [...(reached.get(host) ?? []), index]);
      }
      expected.forEach((host, server) => {
        const indexes = Array.from({ length: clients }, (_, index) => index).filter((index) => index % servers === server);
        assert.deepEqual(reached.get(host) ?? [], indexes, `${clients} over ${servers}: server ${server}`);
      });
    }
  }
});

/** The limit flags of the rendered server line, as pairs. */
function limitsOf(options: RenderOptions): Record<string, string> {
  const statefulSet = renderTest(options, { testId: 'lim', now: 0 }).manifests[1] as unknown as Manifest;
  const args = containerOf(statefulSet).args;
  return Object.fromEntries(args.flatMap((arg, index) => (/^--max-(?!duration)/.test(arg) ? [[arg, args[index + 1]!]] : [])));
}

test('server limits grow with the clients a server gets and what each opens; the server takes every line rendered', async () => {
  const cases: [string, RenderOptions, Record<string, string>][] = [
    ['a small test keeps the defaults', shapeOf(5, 3, { connections: 4 }), {}],
    [
      '100 clients per server, 300 connections each; all 200 meet at server 0’s barrier, each first in its handshake',
      shapeOf(200, 2, { connections: 300 }),
      { '--max-tests': '100', '--max-per-client': '300', '--max-handshakes': '201', '--max-connections': '30000' },
    ],
    [
      'workers: 4 threads a test',
      shapeOf(200, 2, { ioModel: 'workers', workers: 4 }),
      {
        '--max-tests': '100',
        '--max-per-client': '300',
        '--max-handshakes': '201',
        '--max-threads': '400',
        '--max-threads-per-client': '400',
      },
    ],
    [
      'workers beyond a test’s default 16 threads',
      shapeOf(2, 2, { ioModel: 'workers', workers: 32 }),
      // A client's own default then covers its one test.
      { '--max-threads-per-test': '32' },
    ],
    [
      'thread-per-conn: a thread for each connection',
      shapeOf(12, 3, { ioModel: 'thread-per-conn', connections: 40 }),
      { '--max-per-client': '16', '--max-threads-per-test': '40', '--max-threads': '160', '--max-threads-per-client': '160' },
    ],
    [
      'crr: twice the transactions in flight, as closing connections linger',
      shapeOf(100, 1, { workload: 'crr', connections: 200 }),
      { '--max-tests': '100', '--max-per-client': '200', '--max-handshakes': '101', '--max-connections': '40000' },
    ],
    [
      'more clients than a server lets wait at a barrier by default',
      shapeOf(2000, 40, {}),
      { '--max-tests': '50', '--max-per-client': '2050', '--max-handshakes': '2001', '--max-barrier-clients': '2000' },
    ],
    [
      '--raw through a ClusterIP: any server may get every connection',
      shapeOf(50, 5, { raw: true, connections: 300 }),
      { '--max-connections': '15000', '--max-per-ip': '15000' },
    ],
    ['--raw --headless: a tenth each', shapeOf(50, 5, { raw: true, headless: true, connections: 300 }), { '--max-per-ip': '3000' }],
    [
      '--raw thread-per-conn: the pool holds every connection',
      shapeOf(50, 5, { raw: true, headless: true, connections: 300, ioModel: 'thread-per-conn' }),
      { '--max-per-ip': '3000', '--max-threads': '3000' },
    ],
  ];
  for (const [what, options, expected] of cases) {
    assert.deepEqual(limitsOf(options), expected, what);
    const statefulSet = renderTest(options, { testId: 'lim', now: 0 }).manifests[1] as unknown as Manifest;
    await assertServerLineParses(containerOf(statefulSet).args);
  }
});

test('--network-policy: ingress to the servers from the test’s client pods alone, on the port and the data ports, TCP and UDP', async () => {
  const rendered = await render(['--workload', 'rr', '--clients', '3', '--network-policy', '--test-id', 'np', '-n', 'perf'], runInProcess);
  const policy = rendered.networkPolicy!;
  validateManifest(policy);
  assert.deepEqual(policy.metadata, {
    name: 'socktune-np-server',
    namespace: 'perf',
    labels: { 'app.kubernetes.io/name': 'socktune', 'app.kubernetes.io/component': 'server', 'socktune.io/test': 'np' },
  });
  const servers = { matchLabels: { 'socktune.io/test': 'np', 'app.kubernetes.io/component': 'server' } };
  const clients = { matchLabels: { 'socktune.io/test': 'np', 'app.kubernetes.io/component': 'client' } };
  assert.deepEqual(policy.spec, {
    podSelector: servers,
    policyTypes: ['Ingress'],
    ingress: [
      {
        from: [{ podSelector: clients }],
        ports: [
          { protocol: 'TCP', port: 5210 },
          { protocol: 'TCP', port: 20000, endPort: 20999 },
          { protocol: 'UDP', port: 20000, endPort: 20999 },
        ],
      },
    ],
  });
  // The selectors are the pods' own labels: the policy covers exactly the test's servers and clients.
  assert.deepEqual(rendered.statefulSet.spec.selector, servers);
  for (const [selector, labels] of [
    [servers, rendered.statefulSet.spec.template!.metadata.labels],
    [clients, rendered.job.spec.template!.metadata.labels],
  ] as const)
    for (const [key, value] of Object.entries(selector.matchLabels)) assert.equal(labels[key], value);
  assert.equal(flagValue(containerOf(rendered.statefulSet).args, '--data-ports'), '20000-20999');

  const custom = await render(['--workload', 'stream', '--network-policy', '--data-ports', '30000-30099', '-p', '6000'], runInProcess);
  validateManifest(custom.networkPolicy!);
  assert.deepEqual((custom.networkPolicy!.spec.ingress as { ports: unknown[] }[])[0]!.ports, [
    { protocol: 'TCP', port: 6000 },
    { protocol: 'TCP', port: 30000, endPort: 30099 },
    { protocol: 'UDP', port: 30000, endPort: 30099 },
  ]);
  assert.equal(flagValue(containerOf(custom.statefulSet).args, '--data-ports'), '30000-30099');
  // A server that may run more than 1000 tests at once gets a port for each.
  const crowded = await render(['--workload', 'rr', '--clients', '3000', '--network-policy'], runInProcess);
  assert.equal(flagValue(containerOf(crowded.statefulSet).args, '--data-ports'), '20000-22999');
  // A bare port has no data ports: the policy opens the port alone.
  const raw = await render(['--workload', 'rr', '--raw', '--network-policy'], runInProcess);
  validateManifest(raw.networkPolicy!);
  assert.deepEqual((raw.networkPolicy!.spec.ingress as { ports: unknown[] }[])[0]!.ports, [{ protocol: 'TCP', port: 5210 }]);
  assert.equal(flagValue(containerOf(raw.statefulSet).args, '--data-ports'), undefined);
  // Without a policy the servers bind any port, as before; --data-ports alone still pins them.
  const open = await render(['--workload', 'rr'], runInProcess);
  assert.equal(open.networkPolicy, undefined);
  assert.equal(flagValue(containerOf(open.statefulSet).args, '--data-ports'), undefined);
  const pinned = await render(['--workload', 'rr', '--data-ports', '40000-40015'], runInProcess);
  assert.equal(flagValue(containerOf(pinned.statefulSet).args, '--data-ports'), '40000-40015');
});

test('--run-as-user and --arch: the pods’ UID, or none (OpenShift assigns one), and the nodes of the image’s architecture', async () => {
  const uid = await render(['--workload', 'rr', '--run-as-user', '1000', '--arch', 'arm64', '--image', 'r.example/s:1'], runInProcess);
  const unset = await render(['--workload', 'rr', '--run-as-user', 'unset', '--arch', 'any', '--image', 'r.example/s:1'], runInProcess);
  for (const manifest of [uid.statefulSet, uid.job, unset.statefulSet, unset.job]) validateManifest(manifest);
  for (const manifest of [uid.statefulSet, uid.job]) {
    const pod = manifest.spec.template!.spec;
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/arch': 'arm64' });
  }
  for (const manifest of [unset.statefulSet, unset.job]) {
    const pod = manifest.spec.template!.spec;
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(containerOf(manifest).securityContext.runAsNonRoot, true);
    assert.equal(pod.nodeSelector, undefined, '--arch any: no selector');
  }
  assert.equal(uid.run.stderr, '', 'a registry image: no warning');
  // --arch any leaves the architecture to the user's own selector.
  const own = await render(['--workload', 'rr', '--arch', 'any', '--node-selector', 'kubernetes.io/arch=arm64,pool=a'], runInProcess);
  assert.deepEqual(own.job.spec.template!.spec.nodeSelector, { 'kubernetes.io/arch': 'arm64', pool: 'a' });
  const both = await render(['--workload', 'rr', '--node-selector', 'pool=a', '--client-node-selector', 'zone=z'], runInProcess);
  assert.deepEqual(both.job.spec.template!.spec.nodeSelector, { 'kubernetes.io/arch': 'amd64', pool: 'a', zone: 'z' });
});

test('--pre-pull: a DaemonSet that runs the image once on every node of its architecture, then holds a pause container', async () => {
  const image = 'registry.example/socktune:1.2.3';
  const run = await runInProcess([
    'k8s',
    'render',
    '--pre-pull',
    '--image',
    image,
    '--arch',
    'arm64',
    '-n',
    'perf',
    '--node-selector',
    'pool=bench',
    '--test-id',
    'pp',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const comments = run.stdout.split('\n').filter((line) => line.startsWith('#'));
  const manifests = (await import('yaml')).parseAllDocuments(run.stdout, { version: '1.1' }).map((document) => document.toJS() as Manifest);
  assert.deepEqual(
    manifests.map((manifest) => manifest.kind),
    ['DaemonSet'],
  );
  const [daemonSet] = manifests;
  validateManifest(daemonSet!);
  assert.equal(daemonSet!.metadata.name, 'socktune-pp-pre-pull');
  assert.equal(daemonSet!.metadata.namespace, 'perf');
  const pod = daemonSet!.spec.template!.spec;
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/arch': 'arm64', pool: 'bench' });
  assert.deepEqual(pod.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  const [pull] = pod.initContainers!;
  assert.equal(pull!.image, image);
  assert.deepEqual(pull!.args, ['--version']);
  assert.equal(pull!.securityContext.readOnlyRootFilesystem, true);
  assert.equal(containerOf(daemonSet!).image, 'registry.k8s.io/pause:3.10');
  assert.ok(
    comments.includes('# wait:     kubectl rollout status -n perf daemonset/socktune-pp-pre-pull --timeout=600s'),
    comments.join('\n'),
  );
  assert.ok(
    comments.includes(
      '# clean up: kubectl delete -n perf daemonset/socktune-pp-pre-pull (the nodes keep the image until the kubelet collects unused images)',
    ),
  );
  // The init container's command line is one the image's socktune takes.
  assert.equal((await runInProcess(pull!.args)).code, 0);
  const json = await runInProcess([
    'k8s',
    'render',
    '--pre-pull',
    '--image',
    image,
    '--pause-image',
    'mirror.example/pause:3.10',
    '--json',
  ]);
  const list = JSON.parse(json.stdout) as { items: Manifest[] };
  validateManifest(list.items[0]!);
  assert.equal(containerOf(list.items[0]!).image, 'mirror.example/pause:3.10');
  assert.match(
    json.stderr,
    /^socktune k8s render --pre-pull: registry\.example\/socktune:1\.2\.3 onto every node labelled kubernetes\.io\/arch=amd64/,
  );
});
