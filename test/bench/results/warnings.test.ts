import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseServerMessage } from '../../../src/bench/control/server-messages.ts';
import { collectEnvironment } from '../../../src/bench/results/environment.ts';
import { saturated, trialsSaturated, WARNING_KINDS, type Warning } from '../../../src/bench/results/warnings.ts';
import { runCli, startServer } from '../../../testkit/cli.ts';

test('the JSON schema lists exactly the warning kinds the code makes', () => {
  const schema = JSON.parse(readFileSync(new URL('../../../docs/schema/socktune-1.schema.json', import.meta.url), 'utf8')) as {
    definitions: { warningDetails: { items: { properties: { kind: { enum: string[] } } } } };
  };
  assert.deepEqual([...schema.definitions.warningDetails.items.properties.kind.enum].sort(), [...WARNING_KINDS].sort());
});

test("a server's capped buffers cross the control channel as facts; the client renders them and refuses malformed ones", () => {
  const ready = (warnings: unknown) => ({
    type: 'ready',
    dataPort: 1,
    effective: { sendBufferSize: 1, receiveBufferSize: 1, noDelay: true, keepAlive: false },
    warnings,
    environment: collectEnvironment(),
    memory: { rssBytes: 1, heapUsedBytes: 1 },
  });
  const parsed = parseServerMessage(
    ready([
      { kind: 'buffer-capped', option: 'receiveBufferSize', requested: 8_388_608, effective: 8_388_608, message: 'ignored: rm -rf /' },
    ]),
  );
  assert.equal(parsed.type, 'ready');
  const [capped] = parsed.type === 'ready' ? parsed.warnings : [];
  assert.equal(capped?.sysctl, 'net.core.rmem_max');
  assert.equal(
    capped?.message,
    'receiveBufferSize 8388608 was capped by the kernel: effective 8388608 bytes, not 16777216. Raise it with: sysctl -w net.core.rmem_max=8388608',
  );
  for (const bad of [
    'capped',
    [{ kind: 'buffer-capped', option: 'other', requested: 1, effective: 1 }],
    [{ kind: 'x' }],
    new Array(3).fill({}),
  ]) {
    assert.throws(() => parseServerMessage(ready(bad)), { code: 'SOCKTUNE_ERR_PROTOCOL' });
  }
});

test('stream -w above the kernel cap: warningDetails names each side, the option, the sizes and the sysctl; warnings are their messages', async () => {
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
  const asked = 2 * Math.max(rmemMax, wmemMax);
  const server = await startServer();
  try {
    const run = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-w', String(asked), '--json']);
    assert.equal(run.code, 0, run.stderr);
    const document = JSON.parse(run.stdout) as { warnings: string[]; warningDetails: Warning[] };
    assert.deepEqual(
      document.warnings,
      document.warningDetails.map((warning) => warning.message),
    );
    const capped = document.warningDetails.filter((warning) => warning.kind === 'buffer-capped');
    assert.deepEqual(capped.map((warning) => `${warning.side} ${warning.option} ${warning.requested} ${warning.sysctl}`).sort(), [
      `client receiveBufferSize ${asked} net.core.rmem_max`,
      `client sendBufferSize ${asked} net.core.wmem_max`,
      `server receiveBufferSize ${asked} net.core.rmem_max`,
      `server sendBufferSize ${asked} net.core.wmem_max`,
    ]);
    for (const warning of capped) assert.ok(warning.effective < 2 * asked, `${warning.effective}`);
  } finally {
    await server.stop();
  }
});

test('a saturated client says what crossed its threshold: CPU, the event loop, or the open-loop schedule', () => {
  const [cpu] = saturated({ clientSaturated: true, cpuPercent: 97.5, eventLoopDelayP99Ms: 1 });
  assert.equal(cpu!.kind === 'client-saturated' && cpu!.trigger, 'cpu');
  assert.match(cpu!.message, /it used 97\.5% of one core \(over 90%\)/);
  const [schedule] = saturated({ clientSaturated: true, cpuPercent: 22.3, eventLoopDelayP99Ms: 2.6, scheduleLagP99Us: 3677 });
  assert.equal(schedule!.kind === 'client-saturated' && schedule!.trigger, 'schedule');
  assert.match(
    schedule!.message,
    /requests left late against the --rate schedule \(p99 3677 µs late, over 1000 µs\), at 22\.3% of one core/,
  );
  const [loop] = saturated({ clientSaturated: true, cpuPercent: 40, eventLoopDelayP99Ms: 80 });
  assert.match(loop!.message, /its event loop ran late \(delay p99 80 ms, over 50 ms\)/);
  assert.deepEqual(saturated({ clientSaturated: false, cpuPercent: 99, eventLoopDelayP99Ms: 0 }), []);
});

test("a client its cgroup's CPU quota throttled says so first, with the facts, even when its event loop also ran late", () => {
  const throttling = { cpuThrottledMs: 412.3, cpuThrottledPeriods: 37, cpuPeriods: 98 };
  const [throttled] = saturated({ clientSaturated: true, cpuPercent: 19.8, eventLoopDelayP99Ms: 80, ...throttling, cpuQuota: 0.2 });
  assert.deepEqual(throttled, {
    kind: 'client-saturated',
    trigger: 'throttled',
    cpuPercent: 19.8,
    eventLoopDelayP99Ms: 80,
    ...throttling,
    cpuQuota: 0.2,
    message:
      "the load generator itself was saturated: the client's cgroup throttled it 412.3 ms, in 37 of 98 CPU periods " +
      '(CPU quota 0.2, it used 19.8% of one core): its numbers measure the quota, not the server',
  });
  const [noQuota] = saturated({ clientSaturated: true, cpuPercent: 50, eventLoopDelayP99Ms: 1, ...throttling });
  assert.match(noQuota!.message, /in 37 of 98 CPU periods \(it used 50% of one core\)/);
  const [cpu] = saturated({ clientSaturated: true, cpuPercent: 97, eventLoopDelayP99Ms: 1, ...throttling, cpuThrottledMs: 0, cpuQuota: 4 });
  assert.equal(cpu!.kind === 'client-saturated' && cpu!.trigger, 'cpu', 'no throttled time: not the trigger, still the facts');
  assert.equal(cpu!.kind === 'client-saturated' && cpu!.cpuQuota, 4);
  assert.match(trialsSaturated(3, 2).message, /saturated in 3 trial\(s\): its cgroup's CPU quota throttled it in 2 of them, so/);
  assert.match(trialsSaturated(3).message, /a thread of it \(its event loop, or a sender thread\) ran out of CPU/);
});
