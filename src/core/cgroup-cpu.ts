import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A cgroup's CPU bandwidth counters (cpu.stat): how often and how long its CPU quota stopped it. */
export interface CpuThrottling {
  /** Enforcement periods (cpu.cfs_period_us, 100 ms by default) in which the cgroup had work to run. */
  periods: number;
  /** Of those, the periods in which it used up its quota and was stopped until the next one. */
  throttledPeriods: number;
  /** How long it was stopped in all, ms. */
  throttledMs: number;
}

export interface CgroupCpu extends CpuThrottling {
  /** The cgroup's directory, to read the same counters again. */
  directory: string;
  /** CPUs the quota allows (quota ÷ period); absent without a quota. */
  quotaCpus?: number;
}

/**
 * Reads the CPU controller's counters and quota of this process's cgroup (v2, or v1's cpu
 * hierarchy), or of `directory` as an earlier reading found it. undefined where none can be read:
 * not Linux, no cpu controller, a cgroup this process cannot see.
 */
export function readCgroupCpu(directory?: string): CgroupCpu | undefined {
  if (process.platform !== 'linux') return undefined;
  let candidates: string[];
  if (directory === undefined) {
    const procCgroup = readText('/proc/self/cgroup');
    const mountinfo = readText('/proc/self/mountinfo');
    if (procCgroup === undefined || mountinfo === undefined) return undefined;
    candidates = cpuCgroupDirectories(procCgroup, mountinfo);
  } else candidates = [directory];
  for (const candidate of candidates) {
    const stat = readText(join(candidate, 'cpu.stat'));
    const throttling = stat === undefined ? undefined : parseCpuStat(stat);
    if (throttling === undefined) continue;
    const quotaCpus = quotaIn(candidate);
    return { ...throttling, directory: candidate, ...(quotaCpus === undefined ? {} : { quotaCpus }) };
  }
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function quotaIn(directory: string): number | undefined {
  const max = readText(join(directory, 'cpu.max'));
  if (max !== undefined) return parseCpuMax(max);
  return cpusOf(Number(readText(join(directory, 'cpu.cfs_quota_us'))), Number(readText(join(directory, 'cpu.cfs_period_us'))));
}

/**
 * Where this process's cpu.stat may be, most likely first, from /proc/self/cgroup and
 * /proc/self/mountinfo: its cgroup's path under each mount of the v1 hierarchy holding the cpu
 * controller and of v2, then each such mount's root (where a namespaced cgroup's path, as seen from
 * outside the container, does not exist under the mount).
 */
export function cpuCgroupDirectories(procCgroup: string, mountinfo: string): string[] {
  const mounts = cgroupMounts(mountinfo);
  const directories: string[] = [];
  for (const line of procCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (match === null) continue;
    const [, id, controllers, path] = match as unknown as [string, string, string, string];
    const hierarchy = id === '0' && controllers === '' ? 'v2' : controllers.split(',').includes('cpu') ? 'cpu' : undefined;
    if (hierarchy === undefined) continue;
    for (const mount of mounts.filter((candidate) => candidate.hierarchy === hierarchy)) {
      const root = mount.root === '/' ? '' : mount.root;
      const under = path.slice(root.length).replace(/\/+$/, '');
      // A cgroup outside the namespace's shows as "/../..": no directory under the mount.
      if ((path === root || path.startsWith(`${root}/`)) && !under.split('/').includes('..')) directories.push(join(mount.point, under));
      directories.push(mount.point);
    }
  }
  return [...new Set(directories)];
}

interface CgroupMount {
  /** v2, or the v1 hierarchy that holds the cpu controller. */
  hierarchy: 'v2' | 'cpu';
  /** The cgroup the mount shows at its top, as a path of its hierarchy. */
  root: string;
  point: string;
}

/** The v2 and v1 cpu mounts of mountinfo ("36 35 0:30 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu"). */
function cgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0) continue;
    const type = fields[separator + 1];
    const v1Cpu = type === 'cgroup' && (fields[separator + 3] ?? '').split(',').includes('cpu');
    if (type !== 'cgroup2' && !v1Cpu) continue;
    mounts.push({ hierarchy: v1Cpu ? 'cpu' : 'v2', root: unescapeMountField(fields[3]!), point: unescapeMountField(fields[4]!) });
  }
  return mounts;
}

/** mountinfo writes a space, tab, newline or backslash in a path as an octal escape ("\040"). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_escape, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The throttling counters of a cpu.stat: v2 counts the time in µs (throttled_usec), v1 in ns
 * (throttled_time). undefined for a cpu.stat without them (v2 with the cpu controller not enabled).
 */
export function parseCpuStat(text: string): CpuThrottling | undefined {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined) values.set(key, Number(value));
  }
  const periods = values.get('nr_periods');
  const throttledPeriods = values.get('nr_throttled');
  const micros = values.get('throttled_usec');
  const nanos = values.get('throttled_time');
  const throttledMs = micros !== undefined ? micros / 1000 : nanos !== undefined ? nanos / 1e6 : undefined;
  if (periods === undefined || throttledPeriods === undefined || throttledMs === undefined) return undefined;
  if (![periods, throttledPeriods, throttledMs].every(Number.isFinite)) return undefined;
  return { periods, throttledPeriods, throttledMs };
}

/** CPUs a v2 cpu.max allows: "20000 100000" is 0.2; "max 100000" has no quota (undefined). */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  return quota === 'max' ? undefined : cpusOf(Number(quota), Number(period));
}

/** A quota and its period in µs as CPUs; v1's quota of -1, or an unreadable one, is none (undefined). */
export function cpusOf(quotaMicros: number, periodMicros: number): number | undefined {
  return quotaMicros > 0 && periodMicros > 0 ? quotaMicros / periodMicros : undefined;
}
