import type * as hdr from 'hdr-histogram-js';
import { countError, countedErrorOf, type ErrorCounts } from '../../core/errors.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import { connect, type TunedSocket } from '../../transport/client/connect.ts';
import type { DataTarget } from '../control/peer.ts';
import { createLatencyHistogram, encodeHistogram } from '../results/histogram.ts';
import type { ClientSocketSettings } from './data-connections.ts';

/** How long one connect may take: past the open timeout, the connects started just before it may still run this long. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** What one thread (or the event loop alone) opens: its share of the connections, from its place in the source addresses. */
export interface OpenPlan {
  count: number;
  concurrency: number;
  sourceAddresses: string[];
  /** The first connection's place in the round-robin over the source addresses (a thread's offset). */
  firstAttempt: number;
  client: ClientSocketSettings;
  /** performance.now() after which no connect is started; whatever is open by then is held. */
  deadline: number;
}

/** What an opening phase leaves: the connections it holds, what failed, and how long the connects took. */
export interface OpenedCounts {
  opened: number;
  failed: number;
  failures: ErrorCounts;
  connectHistogram: string;
  effective: EffectiveSocketOptions | null;
}

/** Connections opened and held until closed: they count those the peer closes meanwhile. */
export class HeldSockets {
  readonly sockets: TunedSocket[] = [];
  readonly failures: ErrorCounts = {};
  readonly connectTimes: hdr.Histogram = createLatencyHistogram();
  failed = 0;
  closedEarly = 0;

  /** Opens the plan's connections, `concurrency` connects at a time, until done, the deadline or the interrupt. */
  async open(target: DataTarget, plan: OpenPlan, interrupt?: AbortSignal): Promise<void> {
    let attempts = 0;
    const { sourceAddresses } = plan;
    const opener = async (): Promise<void> => {
      while (attempts < plan.count && performance.now() < plan.deadline && interrupt?.aborted !== true) {
        const localAddress =
          sourceAddresses.length > 0 ? sourceAddresses[(plan.firstAttempt + attempts) % sourceAddresses.length] : undefined;
        attempts++;
        const start = performance.now();
        try {
          const socket = await connect({
            ...target,
            ...plan.client,
            ...(localAddress ? { localAddress } : {}),
            timeout: CONNECT_TIMEOUT_MS,
          });
          this.connectTimes.recordValue(Math.max(1, Math.round((performance.now() - start) * 1e6)));
          socket.on('error', () => {});
          socket.once('close', () => this.closedEarly++);
          socket.resume();
          this.sockets.push(socket);
        } catch (error) {
          this.failed++;
          countError(this.failures, countedErrorOf(error));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.count) }, () => opener()));
  }

  get stillOpen(): number {
    return this.sockets.length - this.closedEarly;
  }

  counts(): OpenedCounts {
    return {
      opened: this.sockets.length,
      failed: this.failed,
      failures: this.failures,
      connectHistogram: encodeHistogram(this.connectTimes),
      effective: this.#effective(),
    };
  }

  /** The kernel's settings of a connection still open (read while held: a peer that went away leaves none to read). */
  #effective(): EffectiveSocketOptions | null {
    for (const socket of this.sockets) {
      if (socket.destroyed) continue;
      try {
        return socket.effectiveSocketOptions();
      } catch {
        // Closed under us: the next one.
      }
    }
    return null;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}
