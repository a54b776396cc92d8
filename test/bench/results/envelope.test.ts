import { test } from 'node:test';
import assert from 'node:assert/strict';
import { benchResult, type MeasuredRun } from '../../../src/bench/results/envelope.ts';
import type { CommonOptionsRecord } from '../../../src/bench/results/result-options.ts';
import { createLatencyHistogram, summarizeLatency } from '../../../src/bench/results/histogram.ts';
import { openFilesLimit } from '../../../src/bench/results/warnings.ts';
import { assertSchema } from '../../../testkit/cli.ts';

const calm = { cpuPercent: 10, eventLoopDelayP99Ms: 1, eventLoopDelayMaxMs: 2, clientSaturated: false };
const options: CommonOptionsRecord & {
  count: number;
  holdSec: number;
  sourceAddresses: string[];
  concurrency: number;
  openTimeoutSec: number;
} = {
  target: { host: '127.0.0.1', port: 9 },
  auth: true,
  raw: false,
  client: {},
  server: null,
  count: 1,
  holdSec: 0,
  sourceAddresses: [],
  concurrency: 1,
  openTimeoutSec: 1,
};
const summary = {
  target: 1,
  opened: 1,
  failed: 0,
  failures: {},
  openSeconds: 0.1,
  connectsPerSecond: 10,
  connectLatency: summarizeLatency(createLatencyHistogram()),
  heldSeconds: 0,
  stillOpen: 1,
  openFilesLimit: { soft: 1024, hard: 1024 },
  client: { rssBytesPerConnection: 0 },
  server: null,
};

function run(
  overrides: Partial<MeasuredRun<typeof summary, never, typeof options>> = {},
): MeasuredRun<typeof summary, never, typeof options> {
  return {
    command: 'conns',
    startedAt: Date.UTC(2026, 11, 7),
    serverEnvironment: null,
    options,
    effective: { client: null, server: null },
    intervals: [],
    summary,
    selfCheck: calm,
    interrupted: false,
    warnings: [],
    ...overrides,
  };
}

test('benchResult: the document has exactly the envelope fields, whatever else the run object carries', () => {
  const carrying = { ...run(), authToken: 'a secret that must not be printed', settings: { authToken: 'x' } };
  const result = benchResult(carrying);
  assert.deepEqual(Object.keys(result).sort(), [
    'clientSaturated',
    'command',
    'effective',
    'environment',
    'intervals',
    'options',
    'schema',
    'selfCheck',
    'startedAt',
    'summary',
    'warningDetails',
    'warnings',
  ]);
  assert.doesNotMatch(JSON.stringify(result), /secret|authToken/);
  assert.equal(result.startedAt, '2026-12-07T00:00:00.000Z');
  assert.equal(result.environment.client.node, process.version);
  assertSchema(result);
});

test('benchResult adds the saturation and interruption warnings after the engine’s own, in both warning fields', () => {
  const result = benchResult(
    run({
      interrupted: true,
      selfCheck: { ...calm, cpuPercent: 99, clientSaturated: true },
      warnings: [openFilesLimit(1, 1, 2)],
    }),
  );
  assert.equal(result.interrupted, true);
  assert.equal(result.clientSaturated, true);
  assert.deepEqual(
    result.warningDetails.map((warning) => warning.kind),
    ['open-files-limit', 'client-saturated', 'interrupted'],
  );
  assert.deepEqual(
    result.warnings,
    result.warningDetails.map((warning) => warning.message),
  );
  assert.equal(benchResult(run()).interrupted, undefined, 'absent, not false, when the run was not interrupted');
});
