import type { RemoteInfo } from 'node:dgram';
import { isUdpConnectMessage } from '../../../protocols/iperf3/datagram.ts';
import { bindUdp, type BoundUdpSocket } from '../../../transport/udp/udp-socket.ts';

/** A test waiting for its UDP streams: the address its control connection came from, and what takes each stream's peer. */
interface Waiting {
  address: string;
  /** Takes the stream this peer opens; false when the test wants no more. */
  take(peer: RemoteInfo): boolean;
}

/**
 * The UDP side of the iperf3 server's port, where each UDP stream of a stock client says it is
 * there (iperf3's UDP "connect"). Bound on the first UDP test and kept until the server closes.
 * A stream is taken only for a test whose control connection came from the same address and is
 * waiting for streams; anything else gets no answer (UDP sources can be forged). Each stream then
 * has a socket of its own on this port, connected to its peer, which the kernel prefers for that
 * peer's datagrams.
 */
export class Iperf3UdpPort {
  readonly host: string;
  readonly port: number;
  #bound: Promise<BoundUdpSocket> | undefined;
  readonly #waiting = new Set<Waiting>();
  /** Datagrams that were no stream's connect message of a waiting test: counted, never answered. */
  ignored = 0;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /** Binds the port the first time; a failure is the caller's test's (and the next test tries again). */
  async open(): Promise<void> {
    this.#bound ??= bindUdp({ host: this.host, port: this.port, reuseAddress: true }).then((bound) => {
      bound.socket.on('message', (datagram, peer) => this.dispatch(datagram, peer));
      bound.socket.on('error', () => {});
      return bound;
    });
    try {
      await this.#bound;
    } catch (error) {
      this.#bound = undefined;
      throw error;
    }
  }

  /** Until the returned function is called, connect messages from `address` go to `take`. */
  expect(address: string, take: (peer: RemoteInfo) => boolean): () => void {
    const waiting: Waiting = { address: unmapped(address), take };
    this.#waiting.add(waiting);
    return () => this.#waiting.delete(waiting);
  }

  /**
   * A datagram for the port: the listener's, or one a stream's socket received from someone else (a
   * socket bound to the port but not yet connected can receive another client's connect message).
   */
  dispatch(datagram: Buffer, peer: RemoteInfo): void {
    if (isUdpConnectMessage(datagram)) {
      const from = unmapped(peer.address);
      for (const waiting of this.#waiting) if (waiting.address === from && waiting.take(peer)) return;
    }
    this.ignored++;
  }

  async close(): Promise<void> {
    const bound = await this.#bound?.catch(() => undefined);
    this.#bound = undefined;
    bound?.socket.close();
  }
}

/** An IPv4 address as an IPv6 socket reports it (::ffff:a.b.c.d) is the same peer as a.b.c.d. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
