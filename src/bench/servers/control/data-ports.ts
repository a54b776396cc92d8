import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../../core/errors.ts';
import { portIsFree } from '../../../core/socket-syscalls.ts';
import type { ServerAddress } from '../../../transport/server/socktune-server.ts';

/** Ports from `from` to `to`, both included. */
export interface PortRange {
  from: number;
  to: number;
}

interface Listener {
  listen(): Promise<ServerAddress>;
}

/**
 * Where each test's data listener goes: any free port the kernel picks, or with a range (a firewall
 * or NetworkPolicy opens just those) the next free port of it, searched round-robin from where the
 * last search ended. Ports this server's tests hold are skipped, and a port is tried only when a
 * trial bind without SO_REUSEPORT shows nobody holds it, so a test never joins another's socket
 * group. A range with no port free refuses the test.
 */
export class DataPorts {
  readonly #range: PortRange | undefined;
  readonly #held = new Set<number>();
  #next: number;

  constructor(range: PortRange | undefined) {
    this.#range = range;
    this.#next = range?.from ?? 0;
  }

  /**
   * `create(port)` listening on a data port; `release` gives the port back when the test ends. A
   * server that could not listen there is handed to `discard`, which closes it.
   */
  async listen<T extends Listener>(
    protocol: 'tcp' | 'udp',
    host: string,
    create: (port: number) => T,
    discard: (server: T) => Promise<void>,
  ): Promise<{ server: T; address: ServerAddress; release: () => void }> {
    const range = this.#range;
    if (range === undefined) {
      const server = create(0);
      return { server, address: await server.listen(), release: () => {} };
    }
    const family = isIPv6(host) ? 'ipv6' : 'ipv4';
    const size = range.to - range.from + 1;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#next;
      this.#next = port === range.to ? range.from : port + 1;
      if (this.#held.has(port) || !portIsFree(protocol, family, host, port)) continue;
      this.#held.add(port);
      let server: T | undefined;
      try {
        server = create(port);
        const address = await server.listen();
        return { server, address, release: () => this.#held.delete(port) };
      } catch (error) {
        // A test refused before it listened (its settings) gives its port back as well.
        this.#held.delete(port);
        if (server !== undefined) await discard(server);
        // Taken between the trial and the bind: the next port. Anything else is this test's own failure.
        if (!(error instanceof SocktuneError && error.code === 'SOCKTUNE_ERR_LISTEN')) throw error;
      }
    }
    throw new SocktuneError(
      'SOCKTUNE_ERR_REFUSED',
      `server busy: no free data port in ${range.from}-${range.to} (--data-ports) for the test's ${protocol.toUpperCase()} listener`,
    );
  }
}
