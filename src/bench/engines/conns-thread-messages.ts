import type { DataTarget } from '../control/peer.ts';
import type { OpenedCounts, OpenPlan } from './conns-open.ts';

export interface ConnsThreadData {
  target: DataTarget;
  plan: Omit<OpenPlan, 'deadline'>;
  openTimeoutMs: number;
}

export type ToConnsThread = { type: 'go' } | { type: 'interrupt' } | { type: 'count' } | { type: 'close' };

export type FromConnsThread =
  | { type: 'ready' }
  | { type: 'progress'; opened: number; failed: number }
  | { type: 'opened'; counts: OpenedCounts }
  | { type: 'still-open'; stillOpen: number }
  | { type: 'error'; message: string };
