import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Above these the load generator, not the system under test, may be the bottleneck. */
export const SATURATION_CPU_PERCENT = 90;
export const SATURATION_EVENT_LOOP_P99_MS = 50;

export interface SelfCheck {
  /** CPU time of this process over wall time, in percent of one core (the client's event loop is one thread). */
  cpuPercent: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  clientSaturated: boolean;
}

/** Samples the client's own CPU use and event-loop delay while a test runs. */
export class SelfMonitor {
  readonly #delay = monitorEventLoopDelay({ resolution: 10 });
  #cpu = process.cpuUsage();
  #started = process.hrtime.bigint();

  start(): this {
    this.#delay.enable();
    this.#delay.reset();
    this.#cpu = process.cpuUsage();
    this.#started = process.hrtime.bigint();
    return this;
  }

  stop(): SelfCheck {
    this.#delay.disable();
    const cpu = process.cpuUsage(this.#cpu);
    const wallMicros = Number(process.hrtime.bigint() - this.#started) / 1000;
    const cpuPercent = wallMicros > 0 ? ((cpu.user + cpu.system) / wallMicros) * 100 : 0;
    const eventLoopDelayP99Ms = this.#delay.count > 0 ? this.#delay.percentile(99) / 1e6 : 0;
    const eventLoopDelayMaxMs = this.#delay.count > 0 ? this.#delay.max / 1e6 : 0;
    return {
      cpuPercent: round(cpuPercent, 1),
      eventLoopDelayP99Ms: round(eventLoopDelayP99Ms, 2),
      eventLoopDelayMaxMs: round(eventLoopDelayMaxMs, 2),
      clientSaturated: cpuPercent > SATURATION_CPU_PERCENT || eventLoopDelayP99Ms > SATURATION_EVENT_LOOP_P99_MS,
    };
  }
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
