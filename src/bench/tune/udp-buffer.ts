import type { ServerTarget } from '../control/remote-test.ts';
import { collectEnvironment, type Environment } from '../results/environment.ts';
import { RESULT_SCHEMA } from '../results/result.ts';
import { median, round } from '../results/stats.ts';
import { runUdpStream } from '../engines/udp-stream.ts';

/** The receive buffers asked for when the user names none: 16 KiB to 8 MiB, doubling. */
export const DEFAULT_UDP_BUFFER_SIZES: readonly number[] = Object.freeze(Array.from({ length: 10 }, (_, i) => 16 * 1024 * 2 ** i));
/** The sender batches swept when the user names none: one datagram per system call (iperf3's way), and the kernel's most. */
export const DEFAULT_UDP_BATCHES: readonly number[] = Object.freeze([1, 64]);

export interface UdpBufferSweepOptions {
  target: ServerTarget;
  targetLabel: string;
  /** forward: the server receives (its SO_RCVBUF is swept); reverse: this client receives (its own). */
  direction: 'forward' | 'reverse';
  /** Per stream. */
  bitsPerSecond: number;
  datagramBytes: number;
  parallel: number;
  /** SO_RCVBUF sizes to ask for, in bytes. */
  sizes: readonly number[];
  /** Sender batches: most datagrams per system call (stream -u --batch), each swept over every size. */
  batches: readonly number[];
  trialSec: number;
  /** Each size is measured this many times, the sizes interleaved (a round over every size, then the next round). */
  rounds: number;
  onProgress?: (progress: { done: number; total: number; label: string }) => void;
  interrupt?: AbortSignal | undefined;
}

/** One trial at one size and batch. */
export interface UdpBufferTrial {
  round: number;
  sent: number;
  received: number;
  lostPercent: number;
  /** The receiving socket's own drops (sk_drops); null where unknown. */
  receiveBufferDrops: number | null;
  /** Datagrams per send as counted (a paced stream batches at most a millisecond of its traffic); null where not counted. */
  datagramsPerSend: number | null;
  clientSaturated: boolean;
}

export interface UdpBufferPoint {
  /** The sender's batch: most datagrams per system call. */
  batch: number;
  /** SO_RCVBUF asked for. */
  asked: number;
  /** What the kernel gave (it doubles the request and caps it at net.core.rmem_max). */
  effective: number;
  trials: UdpBufferTrial[];
  medianLostPercent: number;
  /** The most any trial's socket dropped; null when a trial could not tell. */
  maxDrops: number | null;
  /** Every trial at this size ran without a receive-buffer drop. */
  clean: boolean;
}

export interface UdpBufferChoice {
  asked: number;
  effective: number;
}

export interface UdpBufferSweep {
  schema: typeof RESULT_SCHEMA;
  command: 'tune';
  mode: 'udp-receive-buffer';
  startedAt: string;
  durationSec: number;
  interrupted?: true;
  environment: { client: Environment; server: Environment | null };
  options: Omit<UdpBufferSweepOptions, 'target' | 'onProgress' | 'interrupt'>;
  points: UdpBufferPoint[];
  /** Per batch, the smallest size that, with every larger one, dropped nothing; null when even the largest dropped. */
  byBatch: { batch: number; recommendation: UdpBufferChoice | null }[];
  /** The smallest of those (the larger batch at a tie: fewer system calls for the same buffer); null when no batch had one. */
  recommendation: (UdpBufferChoice & { batch: number }) | null;
  /** When the kernel gave less than twice what was asked of the size that decides (the recommended one, else the largest): the sysctl. */
  sysctl: string | null;
  warnings: string[];
}

/**
 * `tune -u`: the smallest receive buffer that loses no datagram to a full buffer at a given rate,
 * for each sender batch (datagrams per system call: the larger, the burstier). Each (batch, size)
 * is a `stream -u` trial against the server (its socket's buffer with forward traffic, this
 * client's with -R), repeated in interleaved rounds; a size is clean when no trial's receiving
 * socket dropped a datagram.
 */
export async function sweepUdpReceiveBuffer(options: UdpBufferSweepOptions): Promise<UdpBufferSweep> {
  const started = Date.now();
  const reverse = options.direction === 'reverse';
  const points: UdpBufferPoint[] = options.batches.flatMap((batch) =>
    options.sizes.map((asked) => ({ batch, asked, effective: 0, trials: [], medianLostPercent: 0, maxDrops: 0, clean: true })),
  );
  let server: Environment | null = null;
  const total = points.length * options.rounds;
  let done = 0;
  const interrupted = (): boolean => options.interrupt?.aborted === true;
  for (let pass = 0; pass < options.rounds && !interrupted(); pass++) {
    for (const point of points) {
      if (interrupted()) break;
      const buffer = { receiveBufferSize: point.asked };
      const result = await runUdpStream({
        target: options.target,
        durationSec: options.trialSec,
        intervalSec: options.trialSec,
        direction: options.direction,
        datagramBytes: options.datagramBytes,
        bitsPerSecond: options.bitsPerSecond,
        parallel: options.parallel,
        batch: point.batch,
        client: reverse ? buffer : {},
        server: reverse ? {} : buffer,
        interrupt: options.interrupt,
      });
      server ??= result.environment.server;
      const udp = result.summary.udp!;
      point.effective = (reverse ? result.effective.client : result.effective.server)?.receiveBufferSize ?? 0;
      point.trials.push({
        round: pass,
        sent: udp.sent,
        received: udp.received,
        lostPercent: udp.lostPercent,
        receiveBufferDrops: udp.receiveBufferDrops,
        datagramsPerSend: udp.datagramsPerSend ?? null,
        clientSaturated: result.clientSaturated,
      });
      options.onProgress?.({ done: ++done, total, label: `batch ${point.batch}, SO_RCVBUF ${point.asked}` });
    }
  }
  for (const point of points) {
    point.medianLostPercent = point.trials.length === 0 ? 0 : round(median(point.trials.map((trial) => trial.lostPercent)), 3);
    const drops = point.trials.map((trial) => trial.receiveBufferDrops);
    point.maxDrops = drops.includes(null) ? null : Math.max(0, ...(drops as number[]));
    point.clean = point.trials.length > 0 && point.maxDrops === 0;
  }
  const measured = points.filter((point) => point.trials.length > 0);
  const byBatch = options.batches.map((batch) => {
    const sizes = measured.filter((point) => point.batch === batch);
    const firstOfCleanTail = sizes.findIndex((_, index) => sizes.slice(index).every((point) => point.clean));
    return { batch, sizes, recommended: firstOfCleanTail < 0 ? undefined : sizes[firstOfCleanTail]! };
  });
  const best = byBatch
    .flatMap(({ recommended }) => (recommended === undefined ? [] : [recommended]))
    .reduce<UdpBufferPoint | undefined>(
      (choice, point) =>
        choice === undefined || point.asked < choice.asked || (point.asked === choice.asked && point.batch > choice.batch) ? point : choice,
      undefined,
    );
  // The kernel's cap matters where it held back the answer: the recommended size, or the largest when none was clean.
  const deciding = best ?? measured.at(-1);
  const capped = deciding !== undefined && deciding.effective < 2 * deciding.asked;
  const choice = (point: UdpBufferPoint): UdpBufferChoice => ({ asked: point.asked, effective: point.effective });
  return {
    schema: RESULT_SCHEMA,
    command: 'tune',
    mode: 'udp-receive-buffer',
    startedAt: new Date(started).toISOString(),
    durationSec: round((Date.now() - started) / 1000, 1),
    ...(interrupted() ? { interrupted: true as const } : {}),
    environment: { client: collectEnvironment(), server },
    options: {
      targetLabel: options.targetLabel,
      direction: options.direction,
      bitsPerSecond: options.bitsPerSecond,
      datagramBytes: options.datagramBytes,
      parallel: options.parallel,
      sizes: [...options.sizes],
      batches: [...options.batches],
      trialSec: options.trialSec,
      rounds: options.rounds,
    },
    points,
    byBatch: byBatch.map(({ batch, recommended }) => ({ batch, recommendation: recommended === undefined ? null : choice(recommended) })),
    recommendation: best === undefined ? null : { batch: best.batch, ...choice(best) },
    sysctl: capped ? `sysctl -w net.core.rmem_max=${deciding.asked}` : null,
    warnings: [
      ...(measured.some((point) => point.trials.some((trial) => trial.clientSaturated))
        ? ['the load generator was saturated in some trials: it may not have sent at the rate asked (see each trial)']
        : []),
      ...(measured.some((point) => point.maxDrops === null)
        ? ["the receiving socket's drop counter could not be read in some trials (/proc/net/udp): those sizes count as not clean"]
        : []),
    ],
  };
}
