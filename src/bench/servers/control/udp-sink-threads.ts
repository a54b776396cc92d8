import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import type { EffectiveSocketOptions } from '../../../core/socket-options.ts';
import { boundPort, closeFd, createBoundUdpFd, readEffectiveBufferSizes } from '../../../core/socket-syscalls.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';
import { sumDatagramCounts, type DatagramCounts } from '../../results/datagram-stats.ts';
import { startBlockingThreads, stopBlockingThreads } from '../../../transport/io/blocking-threads.ts';
import type { UdpSinkThreadCounts, UdpSinkThreadData } from './udp-sink-thread.ts';
import { LIVE_COUNTS, sumLiveCounts } from './udp-test-counts.ts';

const THREAD_ENTRY = new URL(`./udp-sink-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface UdpSinkThreadsOptions {
  family: 'ipv4' | 'ipv6';
  host: string;
  /** 0: any free port. */
  port: number;
  client: string | undefined;
  token: Buffer;
  buffers: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  threads: number;
  affinity: number[] | undefined;
  /** rr -u: echo each datagram, within `budget` when there is one. */
  echo: boolean;
  budget: SendBudget | undefined;
  coalesce: boolean;
}

/** What the threads counted, once they stopped: per stream, and the replies echoed per stream. */
export interface UdpSinkThreadsTotals {
  streams: Map<number, DatagramCounts>;
  echoed: number[];
}

/**
 * A UDP test's server end in a thread model: N threads, each a blocking socket in the SO_REUSEPORT
 * group of one port (bound first by a socket of its own, closed once the threads hold the port),
 * counting as the event loop's socket does; their running counts in shared memory, their per-stream
 * counts posted when they stop.
 */
export class UdpSinkThreads {
  readonly port: number;
  readonly effective: Pick<EffectiveSocketOptions, 'sendBufferSize' | 'receiveBufferSize'>;
  readonly #workers: Worker[];
  readonly #stop: SharedArrayBuffer;
  readonly #live: SharedArrayBuffer;
  readonly #posted: Promise<UdpSinkThreadCounts>[];

  private constructor(
    port: number,
    effective: UdpSinkThreads['effective'],
    workers: Worker[],
    stop: SharedArrayBuffer,
    live: SharedArrayBuffer,
  ) {
    this.port = port;
    this.effective = effective;
    this.#workers = workers;
    this.#stop = stop;
    this.#live = live;
    // Each thread's next message after 'ready' is its counts, posted as it stops.
    this.#posted = workers.map(
      (worker) =>
        new Promise((resolve) => {
          worker.once('message', resolve);
          worker.once('exit', () => resolve({ streams: [], echoed: [] }));
        }),
    );
  }

  static async start(options: UdpSinkThreadsOptions): Promise<UdpSinkThreads> {
    const { family, host, buffers, threads } = options;
    const first = createBoundUdpFd(family, host, options.port === 0 ? exclusivePort(family, host) : options.port, true, buffers);
    try {
      const port = boundPort(first);
      const effective = readEffectiveBufferSizes(first);
      const stop = new SharedArrayBuffer(4);
      const live = new SharedArrayBuffer(threads * LIVE_COUNTS.length * 8);
      const data = Array.from({ length: threads }, (_, index): UdpSinkThreadData => ({
        family,
        host,
        port,
        buffers,
        client: options.client,
        token: options.token,
        echo: options.echo,
        budget: options.budget?.state,
        affinity: options.affinity,
        coalesce: options.coalesce,
        stop,
        live,
        index,
      }));
      const workers = await startBlockingThreads(THREAD_ENTRY, data, stop, 'a UDP test thread');
      return new UdpSinkThreads(port, effective, workers, stop, live);
    } finally {
      // No test datagram comes before the client hears the port, so none was left in this socket's queue.
      closeFd(first);
    }
  }

  live(): ReturnType<typeof sumLiveCounts> {
    return sumLiveCounts(new Float64Array(this.#live));
  }

  /** Stops the threads and merges what they counted (the kernel keeps a client socket on one thread; a stream seen by two is summed). */
  async stop(): Promise<UdpSinkThreadsTotals> {
    await stopBlockingThreads(this.#workers, this.#stop);
    const posted = await Promise.all(this.#posted);
    const parts = new Map<number, DatagramCounts[]>();
    for (const [stream, counts] of posted.flatMap((thread) => thread.streams)) parts.set(stream, [...(parts.get(stream) ?? []), counts]);
    const echoed: number[] = [];
    for (const thread of posted) thread.echoed.forEach((count, stream) => (echoed[stream] = (echoed[stream] ?? 0) + (count ?? 0)));
    return { streams: new Map([...parts].map(([stream, counts]) => [stream, sumDatagramCounts(counts)])), echoed };
  }
}

/**
 * A port nobody holds: one the kernel picks for a socket without SO_REUSEPORT, closed at once. A
 * SO_REUSEPORT bind to port 0 may be given a port that another socket group of this user holds,
 * and would join that group (another test's, taking its datagrams).
 */
function exclusivePort(family: 'ipv4' | 'ipv6', host: string): number {
  const probe = createBoundUdpFd(family, host, 0, false);
  try {
    return boundPort(probe);
  } finally {
    closeFd(probe);
  }
}
