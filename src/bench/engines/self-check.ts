import type { SelfCheck } from '../results/result.ts';
import { round } from '../results/stats.ts';
import { SATURATION_THRESHOLDS } from '../results/warnings.ts';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Node's histogram records the time between its timer's firings; the delay is what exceeds the period. */
const SAMPLE_MS = 10;

/** Samples the client's own CPU use and event-loop delay while a test runs. */
export class SelfMonitor {
  readonly #delay = monitorEventLoopDelay({ resolution: SAMPLE_MS });
  #cpu = process.cpuUsage();
  #started = process.hrtime.bigint();

  start(): this {
    this.#delay.enable();
    this.#delay.reset();
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
    const cpuPercent = wallMicros > 0 ? ((cpu.user + cpu.system) / wallMicros) * 100 : 0;
    const excess = (nanos: number): number => (this.#delay.count > 0 ? Math.max(0, nanos / 1e6 - SAMPLE_MS) : 0);
    const eventLoopDelayP99Ms = excess(this.#delay.percentile(99));
    const eventLoopDelayMaxMs = excess(this.#delay.max);
    return {
      cpuPercent: round(cpuPercent, 1),
      eventLoopDelayP99Ms: round(eventLoopDelayP99Ms, 2),
      eventLoopDelayMaxMs: round(eventLoopDelayMaxMs, 2),
      ...(scheduleLagP99Us === undefined ? {} : { scheduleLagP99Us: round(scheduleLagP99Us, 1) }),
      // Above these the load generator, not the system under test, may be the bottleneck.
      clientSaturated:
        eventLoopDelayP99Ms > SATURATION_THRESHOLDS.eventLoopDelayP99Ms ||
        (scheduleLagP99Us === undefined
          ? cpuPercent > SATURATION_THRESHOLDS.cpuPercent
          : scheduleLagP99Us > SATURATION_THRESHOLDS.scheduleLagP99Us),
    };
  }
}
