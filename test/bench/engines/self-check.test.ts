import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Warning } from '../../../src/bench/results/warnings.ts';
import type { SelfCheck } from '../../../src/bench/results/result.ts';
import { readCgroupCpu } from '../../../src/core/cgroup-cpu.ts';
import { assertSchema, BIN, startServer } from '../../../testkit/cli.ts';
import { runProcess, waitFor } from '../../../testkit/helpers.ts';

/** A new child of this process's cpu cgroup (v1 or v2) limited to 0.1 CPU (an rr client wants a whole one: well over it even on a busy machine), or why one cannot be made here. */
function quotaCgroup(): { directory: string } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'making a cgroup takes root' };
  const own = readCgroupCpu();
  if (own === undefined) return { skip: 'this process has no cgroup with readable CPU counters (not Linux, or no cpu controller)' };
  const directory = join(own.directory, `socktune-test-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(directory);
  } catch (error) {
    return { skip: `cannot make a cgroup under ${own.directory}: ${(error as NodeJS.ErrnoException).code}` };
  }
  try {
    if (existsSync(join(directory, 'cpu.max'))) writeFileSync(join(directory, 'cpu.max'), '10000 100000');
    else {
      writeFileSync(join(directory, 'cpu.cfs_period_us'), '100000');
      writeFileSync(join(directory, 'cpu.cfs_quota_us'), '10000');
    }
  } catch (error) {
    rmdirSync(directory);
    return { skip: `cannot set a CPU quota on ${directory}: ${(error as NodeJS.ErrnoException).code}` };
  }
  return { directory };
}

/** Moves whatever is left in the cgroup back to its parent, then removes it (a process that just exited leaves it once reaped). */
async function removeCgroup(directory: string): Promise<void> {
  for (const pid of readFileSync(join(directory, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try {
      writeFileSync(join(dirname(directory), 'cgroup.procs'), pid);
    } catch {
      // It exited meanwhile.
    }
  }
  const removed = await waitFor(() => {
    try {
      rmdirSync(directory);
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(removed, `${directory} could not be removed`);
}

test('a cgroup with a CPU quota makes the self-check report throttling', async (t) => {
  const cgroup = quotaCgroup();
  if ('skip' in cgroup) return t.skip(cgroup.skip);
  t.after(() => removeCgroup(cgroup.directory));
  const server = await startServer();
  t.after(() => server.stop());
  // The shell moves itself into the cgroup, then becomes the CLI: every thread of the client runs under the quota.
  const inCgroup = (args: string[]) =>
    runProcess(
      'sh',
      [
        '-c',
        'echo $$ > "$1" && shift && exec "$@"',
        'sh',
        join(cgroup.directory, 'cgroup.procs'),
        process.execPath,
        BIN,
        'rr',
        '-c',
        '127.0.0.1',
        '-p',
        String(server.port),
        ...args,
      ],
      { timeoutMs: 60_000 },
    );

  const json = await inCgroup(['-t', '1', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const document = JSON.parse(json.stdout) as {
    selfCheck: SelfCheck;
    clientSaturated: boolean;
    warnings: string[];
    warningDetails: Warning[];
  };
  assertSchema(document);
  const { selfCheck } = document;
  assert.ok(selfCheck.cpuThrottledMs! > 0, JSON.stringify(selfCheck));
  assert.ok(selfCheck.cpuThrottledPeriods! > 0 && selfCheck.cpuThrottledPeriods! <= selfCheck.cpuPeriods!, JSON.stringify(selfCheck));
  assert.equal(selfCheck.cpuQuota, 0.1);
  assert.equal(selfCheck.clientSaturated, true);
  assert.equal(document.clientSaturated, true);
  const warning = document.warningDetails.find((detail) => detail.kind === 'client-saturated');
  assert.equal(warning?.kind === 'client-saturated' && warning.trigger, 'throttled');
  assert.ok(
    document.warnings.some((line) =>
      /the client's cgroup throttled it [\d.]+ ms, .*CPU quota 0\.1.*measure the quota, not the server/.test(line),
    ),
    document.warnings.join('\n'),
  );

  const human = await inCgroup(['-t', '0.5']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /cgroup CPU quota 0\.1, throttled [\d.]+ ms\).*← client saturated/);
  assert.match(human.stderr, /warning: the load generator itself was saturated: the client's cgroup throttled it/);
});
