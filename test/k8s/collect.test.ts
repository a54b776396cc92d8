import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runProcess } from '../../testkit/helpers.ts';
import { constants as bufferConstants } from 'node:buffer';
import { chmodSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, BIN, type CliRun, type MergedRr, runCli, runInProcess, type RunningServer, startServer } from '../../testkit/cli.ts';
import { collectSources, resultOfPod, serverShares, splitPodLogs } from '../../src/k8s/collect.ts';
import type { MergeSource } from '../../src/bench/results/merge.ts';
import { prefixed } from '../../testkit/k8s.ts';

const work = mkdtempSync(join(tmpdir(), 'socktune-k8s-collect-'));
const JOB = 'socktune-c0ll3c-clients';
const PODS = [`${JOB}-0-abcde`, `${JOB}-1-fghij`, `${JOB}-2-klmno`];

/** Three rr clients of one test, as three pods would run them: two print --ndjson, one --json. */
let runs: CliRun[] = [];
let server: RunningServer | undefined;

before(async () => {
  server = await startServer(['--json']);
  const startAt = Date.now() + 2500;
  runs = await Promise.all(
    ['--ndjson', '--ndjson', '--json'].map((output) =>
      runCli([
        'rr',
        '-c',
        '127.0.0.1',
        '-p',
        String(server!.port),
        '-t',
        '0.4',
        '-i',
        '0.2',
        '--start-at',
        String(startAt),
        '--start-late-tolerance',
        '600',
        output,
      ]),
    ),
  );
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
});

after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

function requestsOf(run: CliRun): number {
  const lines = run.stdout.trim().split('\n');
  const document = (lines.length > 1 && lines[0]!.startsWith('{"') ? JSON.parse(lines.at(-1)!) : JSON.parse(run.stdout)) as {
    summary: { requests: number };
  };
  return document.summary.requests;
}

/** The CLI with `input` on its stdin. */
function runWithInput(args: string[], input: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runProcess(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    input,
    timeoutMs: 30_000,
    label: `socktune ${args.join(' ')}`,
  });
}

/** What `kubectl logs -l ... --prefix` prints for the three pods: each pod's lines together, stderr before the result. */
function kubectlOutput(order = [0, 1, 2]): string {
  return `${order.map((index) => prefixed(PODS[index]!, 'client', `${runs[index]!.stderr}${runs[index]!.stdout}`)).join('\n')}\n`;
}

test('collect: kubectl logs --prefix on stdin → one merged result, exact sums, pods in index order', async () => {
  const run = await runWithInput(['k8s', 'collect', '--expect', '3', '--json'], kubectlOutput([2, 0, 1]));
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as MergedRr & {
    merged: string;
    sources: { label: string }[];
    clientsPerServer: { server: string; clients: number }[];
  };
  assertSchema(merged);
  assert.equal(merged.merged, 'rr');
  assert.deepEqual(
    merged.sources.map((source) => source.label),
    PODS,
  );
  assert.equal(
    merged.summary.requests,
    runs.map(requestsOf).reduce((a, b) => a + b, 0),
  );
  assert.equal(merged.summary.latency.count, merged.summary.requests);

  // Every client reached the one server: the clients per server are its three.
  assert.deepEqual(merged.clientsPerServer, [{ server: `127.0.0.1:${server!.port}`, clients: 3 }]);

  const human = await runWithInput(['k8s', 'collect'], kubectlOutput());
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^merged 3 rr runs, started within \d+ ms:/);
  assert.match(human.stdout, new RegExp(`  ${PODS[0]}  started `));
  assert.match(
    human.stdout,
    new RegExp(`clients per server \\(the -c each client reached\\), 1 server\\(s\\):\n  127\\.0\\.0\\.1:${server!.port}  3\n`),
  );
});

test('collect: a test of one client pod merges to that pod’s result (the notes print --expect 1)', async () => {
  const run = await runWithInput(['k8s', 'collect', '--expect', '1', '--json'], kubectlOutput([1]));
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as MergedRr & { sources: { label: string }[]; clientsPerServer: unknown[] };
  assertSchema(merged);
  assert.deepEqual(
    merged.sources.map((source) => source.label),
    [PODS[1]],
  );
  assert.equal(merged.summary.requests, requestsOf(runs[1]!));
  assert.deepEqual(merged.clientsPerServer, [{ server: `127.0.0.1:${server!.port}`, clients: 1 }]);
});

test('serverShares: the clients of each server, servers in index order (10 after 9), as each result’s target names it', () => {
  // Pod 0's result line, pointed at other servers.
  const line = JSON.parse(runs[0]!.stdout.trim().split('\n').at(-1)!) as { options: { target: { host: string; port: number } } };
  const at = (host: string, port = 5210): MergeSource['result'] => {
    const result = structuredClone(line);
    result.options.target = { host, port };
    return result as unknown as MergeSource['result'];
  };
  const sources = ['s-10.svc', 's-9.svc', 's-10.svc', 'fd00::1', 's-9.svc', 's-9.svc'].map((host, index) => ({
    label: `pod-${index}`,
    result: at(host),
  }));
  assert.deepEqual(serverShares(sources), [
    { server: '[fd00::1]:5210', clients: 1 },
    { server: 's-9.svc:5210', clients: 3 },
    { server: 's-10.svc:5210', clients: 2 },
  ]);
});

test('collect: one file per pod, labelled by file; a pretty --json log and lines after the result are read too', async () => {
  const files = runs.map((run, index) => {
    const file = join(work, `client-${index}.log`);
    // A warning the client wrote after its result must not hide the result line.
    writeFileSync(file, `${run.stderr}${run.stdout}warning: something late\n`);
    return file;
  });
  const run = await runCli(['k8s', 'collect', ...files, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const merged = JSON.parse(run.stdout) as MergedRr & { sources: { label: string }[] };
  assert.deepEqual(
    merged.sources.map((source) => source.label),
    files,
  );
  assert.equal(
    merged.summary.requests,
    runs.map(requestsOf).reduce((a, b) => a + b, 0),
  );
});

test('collect refuses, with SOCKTUNE_ERR_MERGE and exit 2, a merge that would not be the whole test', async () => {
  const failed = prefixed(
    `${JOB}-1-zzzzz`,
    'client',
    'socktune: SOCKTUNE_ERR_USAGE: --start-at 1 (1970-01-01T00:00:00.001Z) was 4.200 s ago, later than --start-late-tolerance 1 s',
  );
  const cases: [string, string[], RegExp][] = [
    [
      `${prefixed(PODS[0]!, 'client', runs[0]!.stdout)}\n${failed}\n`,
      [],
      /1 of 2 client pod\(s\) have no result, so the merge would leave their load out:\n {2}socktune-c0ll3c-clients-1-zzzzz: no result line; its log ends with "socktune: SOCKTUNE_ERR_USAGE: --start-at 1/,
    ],
    [
      kubectlOutput([0, 1]),
      ['--expect', '3'],
      /expected the logs of 3 client pod\(s\), found 2 \(socktune-c0ll3c-clients-0-abcde, socktune-c0ll3c-clients-1-fghij\)/,
    ],
    [
      `${kubectlOutput([0, 1])}${prefixed(`${JOB}-1-again`, 'client', runs[2]!.stdout)}\n`,
      [],
      /pods socktune-c0ll3c-clients-1-again and socktune-c0ll3c-clients-1-fghij ran the same completion index: merge one run of each/,
    ],
    [
      `${prefixed(PODS[0]!, 'client', runs[0]!.stdout)}\n${prefixed(PODS[1]!, 'client', runs[0]!.stdout.replace(/"startAt":\d+/, '"startAt":1'))}\n`,
      [],
      /the results started at different times \(a barrier release or --start-at: .*\): logs of different tests/,
    ],
    ['', [], /no pod log was given: pipe `kubectl logs/],
  ];
  for (const [input, flags, message] of cases) {
    const run = await runWithInput(['k8s', 'collect', ...flags], input);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^socktune: SOCKTUNE_ERR_MERGE: /);
    assert.match(run.stderr, message);
  }
  const missing = await runCli(['k8s', 'collect', join(work, 'nope.log')]);
  assert.match(missing.stderr, /SOCKTUNE_ERR_MERGE: cannot read .*nope\.log: ENOENT/);
  const usage: [string[], RegExp][] = [
    [['--kubectl'], /--kubectl needs --test-id/],
    [['--test-id', 'x'], /--test-id and --namespace go with --kubectl/],
    [['--kubectl', '--test-id', 'x', 'file.log'], /--kubectl reads the logs itself: drop the files/],
    [['--expect', '0'], /--expect takes a whole number from 1/],
  ];
  for (const [flags, message] of usage) {
    const run = await runInProcess(['k8s', 'collect', ...flags]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
  }
});

test('collect --kubectl runs kubectl logs for the test’s client pods, every line, prefixed', async () => {
  // A stand-in kubectl on PATH: records its arguments and prints the pods' logs (or fails as with no cluster).
  const logs = join(work, 'kubectl-output.txt');
  const argsFile = join(work, 'kubectl-args.txt');
  writeFileSync(logs, kubectlOutput());
  const script = join(work, 'kubectl');
  writeFileSync(
    script,
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\nif [ -n "$FAIL" ]; then echo 'error: You must be logged in to the server' >&2; exit 1; fi\ncat '${logs}'\n`,
  );
  chmodSync(script, 0o755);
  const path = `${work}:${process.env.PATH ?? ''}`;
  const run = await runCli(
    ['k8s', 'collect', '--kubectl', '--test-id', 'c0ll3c', '-n', 'perf', '--expect', '3', '--json'],
    30_000,
    undefined,
    {
      PATH: path,
    },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(
    (JSON.parse(run.stdout) as MergedRr).summary.requests,
    runs.map(requestsOf).reduce((a, b) => a + b, 0),
  );
  assert.deepEqual(readFileSync(argsFile, 'utf8').trim().split('\n'), [
    'logs',
    '--namespace',
    'perf',
    '--selector',
    'socktune.io/test=c0ll3c,app.kubernetes.io/component=client',
    '--prefix',
    '--tail=-1',
  ]);
  const failing = await runCli(['k8s', 'collect', '--kubectl', '--test-id', 'c0ll3c'], 30_000, undefined, { PATH: path, FAIL: '1' });
  assert.equal(failing.code, 2);
  assert.match(failing.stderr, /SOCKTUNE_ERR_MERGE: kubectl logs .* failed \(exit 1\): error: You must be logged in to the server/);
  const absent = await runCli(['k8s', 'collect', '--kubectl', '--test-id', 'c0ll3c'], 30_000, undefined, { PATH: join(work, 'empty') });
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /SOCKTUNE_ERR_USAGE: kubectl is not on PATH/);
});

test('splitPodLogs, resultOfPod, collectSources: the parsing itself', () => {
  const text = kubectlOutput();
  const logs = splitPodLogs(text, 'stdin');
  assert.deepEqual(
    logs.map((log) => log.pod),
    PODS,
  );
  assert.deepEqual(logs[0]!.lines.join('\n'), `${runs[0]!.stderr}${runs[0]!.stdout}`.trimEnd());
  assert.deepEqual(
    splitPodLogs(runs[0]!.stdout, 'file.log').map((log) => log.pod),
    ['file.log'],
  );
  assert.equal(collectSources(logs, { expect: 3 }).length, 3);
  assert.deepEqual(resultOfPod({ pod: 'p', lines: [] }), { missing: 'its log is empty' });
  // An interval line is not a result.
  const intervalOnly = runs[0]!.stdout.split('\n').filter((line) => line.includes('"type":"interval"'));
  assert.ok(intervalOnly.length > 0);
  assert.match((resultOfPod({ pod: 'p', lines: intervalOnly }) as { missing: string }).missing, /no result line/);
  // A JSON line that is not a socktune/1 result document is named.
  assert.throws(() => resultOfPod({ pod: 'p', lines: ['{"schema":"other/1"}'] }), /pod p: not a socktune\/1 document/);
});

interface ResultLine {
  summary: Record<string, unknown>;
  intervals: Record<string, unknown>[];
}

/** Pod 0's ndjson log with its result line (the last) changed by `edit`, or replaced by what `edit` returns. */
function podZeroWith(edit: (result: ResultLine) => string | void): string {
  const lines = runs[0]!.stdout.trimEnd().split('\n');
  const result = JSON.parse(lines.at(-1)!) as ResultLine;
  const replaced = edit(result);
  lines[lines.length - 1] = replaced ?? JSON.stringify(result);
  return `${prefixed(PODS[0]!, 'client', lines.join('\n'))}\n${prefixed(PODS[1]!, 'client', runs[1]!.stdout)}\n`;
}

/** Malformed result lines of pod 0: what each edit does to the line, and what collect must say. */
const MALFORMED: [string, (result: ResultLine) => string | void, RegExp][] = [
  [
    'a summary histogram that is not base64',
    (result) => void (result.summary.histogram = 'not base64 !!'),
    new RegExp(`${PODS[0]}: summary\\.histogram is not a valid encoded histogram \\(not base64\\)`),
  ],
  [
    'an interval histogram cut short',
    // The first interval: a busy machine may end a 0.4 s run with one interval of 0.2 s, not two.
    (result) => void (result.intervals[0]!.histogram = (result.intervals[0]!.histogram as string).slice(0, -8)),
    new RegExp(`${PODS[0]}: intervals\\.0\\.histogram is not a valid encoded histogram \\(cut short: `),
  ],
  [
    'an interval count that is not a number',
    (result) => void (result.intervals[0]!.requests = 'many'),
    new RegExp(`${PODS[0]}: intervals\\.0\\.requests must be a number from 0 to 9007199254740991, got "many"`),
  ],
  [
    'an interval that starts a day after its run',
    (result) => void (result.intervals[0]!.startSec = 1e9),
    new RegExp(`${PODS[0]}: intervals\\.0\\.startSec must be a number of seconds from 0 to 86400, got 1000000000`),
  ],
  [
    'a result line cut short (the pod killed while it wrote)',
    (result) => JSON.stringify({ type: 'result', ...result }).slice(0, 500),
    new RegExp(
      `1 of 2 client pod\\(s\\) have no result.*\\n {2}${PODS[0]}: no result line; its last JSON line does not parse \\(.+; cut short\\?\\): "\\{\\\\"type\\\\":\\\\"result\\\\"`,
    ),
  ],
];

for (const [what, edit, message] of MALFORMED) {
  test(`collect refuses ${what}: SOCKTUNE_ERR_MERGE, exit 2, naming the pod and the field`, async () => {
    const run = await runWithInput(['k8s', 'collect'], podZeroWith(edit));
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^socktune: SOCKTUNE_ERR_MERGE: /);
    assert.match(run.stderr, message);
  });
}

test('collect refuses a log file over 512 MiB before reading the rest, naming the file', async () => {
  const big = join(work, 'huge.log');
  // Sparse: zero bytes that take no disk, one past the most collect holds (V8's longest string).
  writeFileSync(big, '');
  truncateSync(big, bufferConstants.MAX_STRING_LENGTH + 1);
  try {
    const run = await runCli(['k8s', 'collect', big]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`SOCKTUNE_ERR_MERGE: .*huge\\.log holds more than ${bufferConstants.MAX_STRING_LENGTH} bytes: not socktune output`),
    );
  } finally {
    rmSync(big, { force: true });
  }
});
