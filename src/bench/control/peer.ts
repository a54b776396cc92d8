import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import type { BufferCapWarning } from '../../core/socket-options.ts';
import type { ResultMessage } from './control-protocol.ts';
import type { ProcessMemory } from '../results/memory.ts';
import type { Environment } from '../results/environment.ts';

/** Where the data connections of a test go; `preamble`: what each sends first (the test's data token, with auth). */
export type DataTarget = ({ host: string; port: number } | { path: string }) & { preamble?: Uint8Array };

/** What a socktune server told us when the test started; absent when the peer is not socktune. */
export interface PeerServerInfo {
  effective: EffectiveSocketOptions;
  environment: Environment;
  warnings: BufferCapWarning[];
  memory: ProcessMemory;
}

/** The other end of a test: a `socktune server` through its control channel, or any TCP service (--raw). */
export interface TestPeer {
  readonly data: DataTarget;
  readonly server: PeerServerInfo | null;
  /** The server's own counters when the test ends; null for a raw peer. */
  finish(): Promise<ResultMessage | null>;
  abort(): void;
}

/** Any TCP service, driven with no control channel: only the client's own numbers exist. */
export class RawPeer implements TestPeer {
  readonly data: DataTarget;
  readonly server = null;

  constructor(data: DataTarget) {
    this.data = data;
  }

  finish(): Promise<null> {
    return Promise.resolve(null);
  }

  abort(): void {}
}
