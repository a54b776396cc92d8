import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuCgroupDirectories, cpusOf, parseCpuMax, parseCpuStat, readCgroupCpu } from '../../src/core/cgroup-cpu.ts';

const V2_STAT = `usage_usec 8123456
user_usec 6000000
system_usec 2123456
nr_periods 120
nr_throttled 37
throttled_usec 412345
nr_bursts 0
burst_usec 0
`;
const V1_STAT = `nr_periods 98
nr_throttled 12
throttled_time 830612345
nr_bursts 0
burst_time 0
`;
/** v2 without the cpu controller enabled for the cgroup: usage only. */
const V2_STAT_NO_CONTROLLER = 'usage_usec 46795733204\nuser_usec 34891625100\nsystem_usec 11904108103\n';

test('parseCpuStat reads v2 throttling in µs and v1 in ns, as ms; no counters is undefined', () => {
  assert.deepEqual(parseCpuStat(V2_STAT), { periods: 120, throttledPeriods: 37, throttledMs: 412.345 });
  assert.deepEqual(parseCpuStat(V1_STAT), { periods: 98, throttledPeriods: 12, throttledMs: 830.612345 });
  assert.equal(parseCpuStat(V2_STAT_NO_CONTROLLER), undefined);
  assert.equal(parseCpuStat(''), undefined);
  assert.equal(parseCpuStat('nr_periods x\nnr_throttled 1\nthrottled_usec 1\n'), undefined);
});

test('the quota in CPUs: v2 cpu.max and v1 cfs_quota_us over cfs_period_us; "max" and -1 are none', () => {
  assert.equal(parseCpuMax('20000 100000\n'), 0.2);
  assert.equal(parseCpuMax('150000 100000\n'), 1.5);
  assert.equal(parseCpuMax('max 100000\n'), undefined);
  assert.equal(cpusOf(50_000, 100_000), 0.5);
  assert.equal(cpusOf(-1, 100_000), undefined);
  assert.equal(cpusOf(Number(undefined), 100_000), undefined);
});

const HYBRID_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

test('cpuCgroupDirectories: the v1 cpu hierarchy (alone or with cpuacct) and v2, the path under the mount first', () => {
  const hybrid = '4:memory:/user.slice\n2:cpu,cpuacct:/system.slice/bench.service\n0::/system.slice/bench.service\n';
  assert.deepEqual(cpuCgroupDirectories(hybrid, HYBRID_MOUNTS), [
    '/sys/fs/cgroup/cpu,cpuacct/system.slice/bench.service',
    '/sys/fs/cgroup/cpu,cpuacct',
    '/sys/fs/cgroup/unified/system.slice/bench.service',
    '/sys/fs/cgroup/unified',
  ]);
  const cpuAlone = HYBRID_MOUNTS.replace(
    '/sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
    '/sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu',
  );
  assert.deepEqual(cpuCgroupDirectories('1:cpu:/socktune-test\n0::/\n', cpuAlone), [
    '/sys/fs/cgroup/cpu/socktune-test',
    '/sys/fs/cgroup/cpu',
    '/sys/fs/cgroup/unified',
  ]);
  const v2Only = '25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n';
  assert.deepEqual(cpuCgroupDirectories('0::/kubepods.slice/pod1/cri-abc\n', v2Only), [
    '/sys/fs/cgroup/kubepods.slice/pod1/cri-abc',
    '/sys/fs/cgroup',
  ]);
  assert.deepEqual(cpuCgroupDirectories('0::/\n', 'garbage\n\n'), []);
});

test('cpuCgroupDirectories in a container: the mount shows the cgroup as its root, or the path is not under it', () => {
  // Docker without a cgroup namespace: the hierarchy's /docker/abc is mounted at /sys/fs/cgroup/cpu.
  const docker = '40 31 0:29 /docker/abc /sys/fs/cgroup/cpu ro - cgroup cgroup rw,cpu\n';
  assert.deepEqual(cpuCgroupDirectories('3:cpu:/docker/abc\n', docker), ['/sys/fs/cgroup/cpu']);
  assert.deepEqual(cpuCgroupDirectories('3:cpu:/docker/abcdef\n', docker), ['/sys/fs/cgroup/cpu'], 'a prefix of a name is not a parent');
  // A cgroup outside the process's cgroup namespace: its path reaches above the mount, where nothing can be read.
  const namespaced = '25 1 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n';
  assert.deepEqual(cpuCgroupDirectories('0::/../../kubepods/pod1\n', namespaced), ['/sys/fs/cgroup']);
  const escaped = '25 1 0:23 / /mnt/cgroup\\040two rw - cgroup2 cgroup2 rw\n';
  assert.deepEqual(cpuCgroupDirectories('0::/a\n', escaped), ['/mnt/cgroup two/a', '/mnt/cgroup two']);
});

test('readCgroupCpu reads a cgroup directory’s counters and quota; without cpu.stat, or without its counters, it is undefined', (t) => {
  const work = mkdtempSync(join(tmpdir(), 'socktune-cgroup-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const directory = (name: string): string => mkdtempSync(join(work, name));
  const v2 = directory('v2-');
  writeFileSync(join(v2, 'cpu.stat'), V2_STAT);
  writeFileSync(join(v2, 'cpu.max'), '20000 100000\n');
  assert.deepEqual(readCgroupCpu(v2), { periods: 120, throttledPeriods: 37, throttledMs: 412.345, directory: v2, quotaCpus: 0.2 });
  const v1 = directory('v1-');
  writeFileSync(join(v1, 'cpu.stat'), V1_STAT);
  writeFileSync(join(v1, 'cpu.cfs_quota_us'), '-1\n');
  writeFileSync(join(v1, 'cpu.cfs_period_us'), '100000\n');
  assert.deepEqual(readCgroupCpu(v1), { periods: 98, throttledPeriods: 12, throttledMs: 830.612345, directory: v1 });
  writeFileSync(join(v1, 'cpu.cfs_quota_us'), '50000\n');
  assert.equal(readCgroupCpu(v1)?.quotaCpus, 0.5);
  const usageOnly = directory('usage-');
  writeFileSync(join(usageOnly, 'cpu.stat'), V2_STAT_NO_CONTROLLER);
  assert.equal(readCgroupCpu(usageOnly), undefined);
  assert.equal(readCgroupCpu(join(usageOnly, 'missing')), undefined);
  const own = readCgroupCpu();
  if (own !== undefined) assert.ok(own.periods >= own.throttledPeriods && own.throttledMs >= 0, JSON.stringify(own));
});
