import { readdirSync } from 'node:fs';
import { SocktuneError } from './errors.ts';
import { libc } from './libc.ts';
import type { FieldCheck } from './validate.ts';
import { errnoName } from './socket-syscalls.ts';

/** Bytes of the CPU mask handed to the kernel: 1024 CPUs, glibc's cpu_set_t. */
const MASK_BYTES = 128;
const MAX_CPU = MASK_BYTES * 8 - 1;

/** Checks a list of CPU numbers from options or the wire. */
export const cpuNumbers: FieldCheck = (value: unknown) =>
  Array.isArray(value) &&
  value.length > 0 &&
  value.length <= 1024 &&
  value.every((cpu) => Number.isSafeInteger(cpu) && cpu >= 0 && cpu < 1024)
    ? undefined
    : 'an array of CPU numbers (0 to 1023)';

/** "0", "2-3", "0,2-3" → [0], [2, 3], [0, 2, 3]: the format of taskset -c and /proc/PID/status Cpus_allowed_list. */
export function parseCpuList(text: string, what: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const first = match ? Number(match[1]) : Number.NaN;
    const last = match?.[2] === undefined ? first : Number(match[2]);
    if (!match || last < first || last > MAX_CPU)
      throw new SocktuneError(
        'SOCKTUNE_ERR_INVALID_OPTION',
        `${what} takes CPU numbers like 0, 2-3 or 0,2-3 (at most ${MAX_CPU}), got ${JSON.stringify(text)}`,
      );
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The compact form of a CPU list: [0, 2, 3] → "0,2-3". */
export function formatCpuList(cpus: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    ranges.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return ranges.join(',');
}

function maskOf(cpus: readonly number[]): Buffer {
  const mask = Buffer.alloc(MASK_BYTES);
  for (const cpu of cpus) mask[cpu >> 3]! |= 1 << (cpu & 7);
  return mask;
}

/** CPUs the calling thread may run on. */
export function currentAffinity(): number[] {
  const mask = Buffer.alloc(MASK_BYTES);
  if (libc().sched_getaffinity(0, MASK_BYTES, mask) < 0)
    throw new SocktuneError('SOCKTUNE_ERR_SOCKOPT', `sched_getaffinity failed: ${errnoName(libc().errno())}`);
  const cpus: number[] = [];
  for (let cpu = 0; cpu <= MAX_CPU; cpu++) if (mask[cpu >> 3]! & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

function setAffinity(tid: number, cpus: readonly number[]): string | undefined {
  return libc().sched_setaffinity(tid, MASK_BYTES, maskOf(cpus)) === 0 ? undefined : errnoName(libc().errno());
}

function pinFailure(cpus: readonly number[], errno: string): SocktuneError {
  return new SocktuneError(
    errno === 'EINVAL' ? 'SOCKTUNE_ERR_INVALID_OPTION' : 'SOCKTUNE_ERR_SOCKOPT',
    `cannot pin to CPUs ${formatCpuList(cpus)}: sched_setaffinity failed with ` +
      `${errno}${errno === 'EINVAL' ? ' (no such CPU is available here)' : ''}`,
  );
}

/** Pins the calling thread only. */
export function pinThread(cpus: readonly number[]): void {
  const errno = setAffinity(0, cpus);
  if (errno !== undefined) throw pinFailure(cpus, errno);
}

/**
 * Pins every thread of process `pid` (this one by default) to `cpus`. The kernel sets affinity per
 * thread and a new thread inherits its creator's, so each existing thread is set and those made
 * later follow. A CPU the process may not use (offline, outside its cgroup) is SOCKTUNE_ERR_INVALID_OPTION.
 */
export function pinProcess(cpus: readonly number[], pid: number = process.pid): void {
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const errno = setAffinity(Number(task), cpus);
    // A thread that ended between the listing and the call is no error.
    if (errno !== undefined && errno !== 'ESRCH') throw pinFailure(cpus, errno);
  }
}
