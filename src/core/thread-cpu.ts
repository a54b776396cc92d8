import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports per-thread CPU time in clock ticks of 1/100 s (USER_HZ, fixed by the kernel's ABI). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system) of each thread of this process, in ticks by thread id; undefined where /proc cannot be read. */
export function readThreadCpuTicks(): Map<number, number> | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const ticks = new Map<number, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      } catch {
        continue; // the thread ended between the listing and the read
      }
      // The name (field 2) may hold spaces and parentheses: the fields are counted after its last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(Number(tid), Number(fields[11]) + Number(fields[12]));
    }
    return ticks;
  } catch {
    return undefined;
  }
}

/**
 * The busiest thread's CPU time between two readings, in percent of one core over `wallMs`: what
 * tells a saturated thread (an event loop, a sender thread) from a process that is busy in all.
 * A thread that started after the first reading counts from zero.
 */
export function busiestThreadPercent(before: Map<number, number>, after: Map<number, number>, wallMs: number): number {
  if (wallMs <= 0) return 0;
  let busiest = 0;
  for (const [tid, ticks] of after) busiest = Math.max(busiest, ticks - (before.get(tid) ?? 0));
  return ((busiest / TICKS_PER_SECOND) * 1000 * 100) / wallMs;
}

/**
 * CPU time (user + system) of the calling thread so far, in µs: Node's own reading where it has one
 * (≥ 23.9), else Linux's /proc/thread-self in ticks; 0 where neither can be read.
 */
export function ownThreadCpuMicros(): number {
  if (typeof process.threadCpuUsage === 'function') {
    const { user, system } = process.threadCpuUsage();
    return user + system;
  }
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}
