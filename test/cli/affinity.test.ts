import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { BIN, runCli, startServer } from '../../testkit/cli.ts';
import { waitFor } from '../../testkit/helpers.ts';

const skip = availableParallelism() < 2 ? 'affinity tests need two CPUs' : false;

/** Cpus_allowed_list of every thread of a process, by thread id. */
function threadAffinities(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      return [/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]!];
    } catch {
      return [];
    }
  });
}

test('server -A pins every thread of the server; client -A pins every thread of the client', { skip }, async () => {
  const server = await startServer(['-A', '1']);
  try {
    assert.ok(
      threadAffinities(server.child.pid!).every((cpus) => cpus === '1'),
      `server threads: ${threadAffinities(server.child.pid!).join(' ')}`,
    );
    const client = spawn(
      process.execPath,
      [BIN, 'rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '1', '-i', '0.1', '-A', '0', '--ndjson'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    client.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    // Read while it measures (its first interval line): every thread it has then, the ones made after pinning included.
    assert.ok(await waitFor(() => /"type":"interval"/.test(stdout), 30_000), 'the client reached its first interval');
    assert.ok(
      threadAffinities(client.pid!).every((cpus) => cpus === '0'),
      `client threads: ${threadAffinities(client.pid!).join(' ')}`,
    );
    const code = await new Promise((resolve) => client.once('exit', resolve));
    assert.equal(code, 0);
    const document = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      environment: { client: { cpuAffinity: string }; server: { cpuAffinity: string } };
    };
    assert.equal(document.environment.client.cpuAffinity, '0');
    assert.equal(document.environment.server.cpuAffinity, '1');
  } finally {
    await server.stop();
  }
});

test("-A N,M pins the test's own server threads (workers) to M, and nothing else of the server", { skip }, async () => {
  const server = await startServer([]);
  try {
    const client = spawn(
      process.execPath,
      [BIN, 'rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '8', '-A', '0,1', '--io-model', 'workers', '--workers', '2'],
      { stdio: 'ignore' },
    );
    const pid = server.child.pid!;
    assert.ok(
      // A loaded machine may take seconds to start the client and the test's threads.
      await waitFor(() => threadAffinities(pid).filter((cpus) => cpus === '1').length === 2, 20_000),
      `server threads: ${threadAffinities(pid).join(' ')}`,
    );
    assert.ok(
      threadAffinities(pid).some((cpus) => cpus === '0-1'),
      'the main thread is not pinned',
    );
    assert.equal(await new Promise((resolve) => client.once('exit', resolve)), 0);
  } finally {
    await server.stop();
  }
});

test('-A: the loop model and CPUs that do not exist are refused with a clear message', async () => {
  const loop = await runCli(['rr', '-c', '127.0.0.1', '-A', '0,1']);
  assert.equal(loop.code, 2);
  assert.match(loop.stderr, /-A N,M pins the test's own server threads: ask for --io-model workers, thread-per-conn or io-uring/);
  const bad = await runCli(['server', '-p', '0', '-A', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-A takes CPU numbers like 0, 2-3 or 0,2-3/);
  const absent = await runCli(['server', '-p', '0', '-A', '1000']);
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /cannot pin to CPUs 1000: sched_setaffinity failed with EINVAL \(no such CPU is available here\)/);
});
