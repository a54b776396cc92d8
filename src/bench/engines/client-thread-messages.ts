import type { ErrorCode } from '../../core/errors.ts';
import type { CrrResult, MsgInterval, MsgResult, RrInterval, RrResult } from '../results/result.ts';
import type { MsgOptions } from './msg.ts';
import type { CrrOptions } from './crr.ts';
import type { RrOptions } from './rr.ts';

/** Options as they cross to a thread: no functions, and a payload arrives as a Uint8Array. */
type Crossing<Options> = Omit<Options, 'onInterval' | 'interrupt' | 'beforeTraffic' | 'payload'> & { payload?: Uint8Array | undefined };

export type ClientThreadData =
  | { command: 'rr'; options: Crossing<RrOptions> }
  | { command: 'crr'; options: Crossing<CrrOptions> }
  | { command: 'msg'; options: Omit<MsgOptions, 'onInterval' | 'interrupt' | 'beforeTraffic'> };

export type ToClientThread = { type: 'go' } | { type: 'interrupt' };

export type FromClientThread =
  | { type: 'ready' }
  | { type: 'interval'; interval: RrInterval | MsgInterval }
  /** `cpuPercent`: this thread's own CPU from its start to its result, in percent of one core. */
  | { type: 'result'; result: RrResult | CrrResult | MsgResult; cpuPercent: number }
  | { type: 'error'; message: string; code?: ErrorCode };
