import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BUFFER_SIZES,
  changesFromDefault,
  configLabel,
  defaultConfig,
  describeBuffer,
  IO_MODEL_CHOICES,
  isDefaultConfig,
  searchSpace,
  type TuneConfig,
  type Workload,
} from '../../../src/bench/tune/space.ts';

const WORKLOADS: readonly Workload[] = ['stream', 'rr', 'msg'];
const key = (config: TuneConfig): string =>
  JSON.stringify([config.bufferSize ?? 'auto', config.noDelay, config.ioModel, config.depth, config.batch]);

test('defaultConfig: socktune’s own settings, 16 messages in flight for msg', () => {
  assert.deepEqual(defaultConfig('stream'), { bufferSize: undefined, noDelay: true, ioModel: 'loop', depth: 1, batch: 'auto' });
  assert.deepEqual(defaultConfig('rr'), defaultConfig('stream'));
  assert.equal(defaultConfig('msg').depth, 16);
  assert.notEqual(defaultConfig('rr'), defaultConfig('rr'), 'a fresh object each time, safe to change');
});

test('changesFromDefault counts the knobs that differ, per workload', () => {
  assert.equal(changesFromDefault(defaultConfig('msg'), 'msg'), 0);
  assert.equal(changesFromDefault(defaultConfig('msg'), 'rr'), 1, 'depth 16 is a change for rr');
  const everything: TuneConfig = { bufferSize: 8192, noDelay: false, ioModel: 'workers', depth: 4, batch: 1 };
  assert.equal(changesFromDefault(everything, 'rr'), 5);
  assert.equal(isDefaultConfig(everything, 'rr'), false);
  assert.equal(isDefaultConfig({ ...defaultConfig('rr') }, 'rr'), true);
});

test('describeBuffer and configLabel: what a ranking row calls a configuration', () => {
  assert.deepEqual(BUFFER_SIZES.map(describeBuffer), ['auto', '8K', '64K', '256K', '1M', '4M']);
  assert.equal(describeBuffer(1536 * 1024), '1.5M');
  const config: TuneConfig = { bufferSize: 64 * 1024, noDelay: false, ioModel: 'workers', depth: 4, batch: 1 };
  assert.equal(configLabel(config, 'stream'), 'buf 64K · workers');
  assert.equal(configLabel(config, 'rr'), 'buf 64K · workers · nagle · depth 4');
  assert.equal(configLabel(config, 'msg'), 'buf 64K · workers · write per msg · depth 4');
  assert.equal(configLabel(defaultConfig('msg'), 'msg'), 'buf auto · loop · coalesced · depth 16');
  assert.equal(configLabel(config, 'rr', true), 'buf 64K · nagle · depth 4', 'a raw peer’s I/O model is not ours to name');
});

test('searchSpace: the grid’s sizes per workload, full and quick', () => {
  const size = (workload: Workload, quick: boolean, raw = false): number => searchSpace({ workload, quick, raw }).length;
  assert.equal(size('stream', false), 6 * 3);
  assert.equal(size('stream', true), 6 * 3, 'a stream keeps every buffer size: the window is what moves it');
  assert.equal(size('rr', false), 6 * 3 * 2 * 3);
  assert.equal(size('rr', true), 2 * 3 * 2 * 2);
  assert.equal(size('msg', false), 6 * 3 * 3 * 2);
  assert.equal(size('msg', true), 3 * 3 * 2);
  assert.equal(size('rr', false, true), 6 * 2 * 3, 'raw: the client side only');
  assert.ok(searchSpace({ workload: 'rr', quick: false, raw: true }).every((config) => config.ioModel === 'loop'));
});

test('searchSpace: the user’s choices narrow the grid, and the default is never left out', () => {
  const narrowed = searchSpace({ workload: 'stream', quick: false, ioModels: ['workers'], bufferSizes: [256 * 1024] });
  assert.deepEqual(
    narrowed.map((config) => [config.bufferSize, config.ioModel]),
    [
      [undefined, 'loop'],
      [undefined, 'workers'],
      [256 * 1024, 'loop'],
      [256 * 1024, 'workers'],
    ],
  );
});

test('searchSpace: whatever is chosen, every config is distinct, within the choices, and the default is in it once', () => {
  const sizes = fc.constantFrom<number | undefined>(...BUFFER_SIZES, 128 * 1024);
  fc.assert(
    fc.property(
      fc.constantFrom(...WORKLOADS),
      fc.boolean(),
      fc.boolean(),
      fc.option(fc.uniqueArray(fc.constantFrom(...IO_MODEL_CHOICES)), { nil: undefined }),
      fc.option(fc.uniqueArray(sizes), { nil: undefined }),
      (workload, quick, raw, ioModels, bufferSizes) => {
        const space = searchSpace({ workload, quick, raw, ioModels, bufferSizes });
        assert.equal(new Set(space.map(key)).size, space.length, 'no config twice');
        assert.equal(space.filter((config) => isDefaultConfig(config, workload)).length, 1);
        for (const config of space) {
          assert.ok(config.ioModel === 'loop' || (!raw && (ioModels ?? IO_MODEL_CHOICES).includes(config.ioModel)));
          assert.ok(config.bufferSize === undefined || (bufferSizes ?? BUFFER_SIZES).includes(config.bufferSize));
          if (workload !== 'rr') assert.equal(config.noDelay, true, 'Nagle only matters to request/response');
          if (workload !== 'msg') assert.equal(config.batch, 'auto');
        }
      },
    ),
  );
});

test('searchSpace measures a value the user repeats once', () => {
  const configs = searchSpace({ workload: 'stream', quick: false, ioModels: ['workers', 'workers'], bufferSizes: [65_536, 65_536] });
  assert.equal(new Set(configs.map((config) => configLabel(config, 'stream'))).size, configs.length);
  assert.equal(configs.length, 4);
});

test('searchSpace: io-uring only when asked, and never in the msg grid (a ring serves bytes, not messages)', () => {
  for (const workload of WORKLOADS) {
    assert.ok(!searchSpace({ workload, quick: true }).some((config) => config.ioModel === 'io-uring'), `${workload}: not by default`);
  }
  const asked = ['loop', 'io-uring'] as const;
  assert.ok(searchSpace({ workload: 'stream', quick: true, ioModels: asked }).some((config) => config.ioModel === 'io-uring'));
  assert.ok(searchSpace({ workload: 'rr', quick: true, ioModels: asked }).some((config) => config.ioModel === 'io-uring'));
  assert.ok(!searchSpace({ workload: 'msg', quick: true, ioModels: asked }).some((config) => config.ioModel === 'io-uring'));
});
