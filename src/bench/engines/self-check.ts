import { readCgroupCpu, type CgroupCpu } from '../../core/cgroup-cpu.ts';
import { busiestThreadPercent, readThreadCpuTicks } from '../../core/thread-cpu.ts';
import type { SelfCheck } from '../results/result.ts';
import { round } from '../results/stats.ts';
import { SATURATION_THRESHOLDS } from '../results/warnings.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Node's histogram records the time between its timer's firings; the delay is what exceeds the period. */
const SAMPLE_MS = 10;

type Throttling = Pick<SelfCheck, 'cpuThrottledMs' | 'cpuThrottledPeriods' | 'cpuPeriods' | 'cpuQuota'>;

/** Samples the client's own CPU use, event-loop delay and its cgroup's CPU throttling while a test runs. */
export class SelfMonitor {
  readonly #delay = monitorEventLoopDelay({ resolution: SAMPLE_MS });
  #cpu = process.cpuUsage();
  #started = process.hrtime.bigint();
  #cgroup: CgroupCpu | undefined;
  #threads: Map<number, number> | undefined;

  start(): this {
    this.#delay.enable();
    this.#delay.reset();
    this.#cgroup = readCgroupCpu();
    this.#threads = readThreadCpuTicks();
    this.#cpu = process.cpuUsage();
    this.#started = process.hrtime.bigint();
    return this;
  }

  /**
   * `scheduleLagP99Us` is given for open-loop runs, which poll the clock between sends: there a
   * busy CPU is by design, and lateness against the schedule is the measure of saturation.
   */
  stop(scheduleLagP99Us?: number): SelfCheck {
    this.#delay.disable();
    const cpu = process.cpuUsage(this.#cpu);
    const wallMicros = Number(process.hrtime.bigint() - this.#started) / 1000;
    const throttling = this.#throttling();
    const cpuPercent = wallMicros > 0 ? ((cpu.user + cpu.system) / wallMicros) * 100 : 0;
    const threadsAfter = this.#threads === undefined ? undefined : readThreadCpuTicks();
    const busiestThread =
      this.#threads === undefined || threadsAfter === undefined
        ? undefined
        : busiestThreadPercent(this.#threads, threadsAfter, wallMicros / 1000);
    const excess = (nanos: number): number => (this.#delay.count > 0 ? Math.max(0, nanos / 1e6 - SAMPLE_MS) : 0);
    const eventLoopDelayP99Ms = excess(this.#delay.percentile(99));
    const eventLoopDelayMaxMs = excess(this.#delay.max);
    return {
      cpuPercent: round(cpuPercent, 1),
      ...(busiestThread === undefined ? {} : { busiestThreadCpuPercent: round(busiestThread, 1) }),
      eventLoopDelayP99Ms: round(eventLoopDelayP99Ms, 2),
      eventLoopDelayMaxMs: round(eventLoopDelayMaxMs, 2),
      ...(scheduleLagP99Us === undefined ? {} : { scheduleLagP99Us: round(scheduleLagP99Us, 1) }),
      ...throttling,
      // Above these the load generator, not the system under test, may be the bottleneck.
      clientSaturated:
        eventLoopDelayP99Ms > SATURATION_THRESHOLDS.eventLoopDelayP99Ms ||
        (throttling.cpuThrottledMs ?? 0) > SATURATION_THRESHOLDS.cpuThrottledMs ||
        (scheduleLagP99Us === undefined
          ? // One thread at its core's limit is saturation; several threads busy in all are not.
            (busiestThread ?? cpuPercent) > SATURATION_THRESHOLDS.cpuPercent
          : scheduleLagP99Us > SATURATION_THRESHOLDS.scheduleLagP99Us),
    };
  }

  /** The cgroup's counters since start() (the whole cgroup's: whatever else runs in it shares the quota); none where unreadable. */
  #throttling(): Throttling {
    const before = this.#cgroup;
    const after = before === undefined ? undefined : readCgroupCpu(before.directory);
    if (before === undefined || after === undefined) return {};
    return {
      cpuThrottledMs: round(Math.max(0, after.throttledMs - before.throttledMs), 1),
      cpuThrottledPeriods: Math.max(0, after.throttledPeriods - before.throttledPeriods),
      cpuPeriods: Math.max(0, after.periods - before.periods),
      ...(after.quotaCpus === undefined ? {} : { cpuQuota: round(after.quotaCpus, 3) }),
    };
  }
}
