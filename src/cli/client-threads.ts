import { availableParallelism } from 'node:os';
import type { Command, Io, Values } from './command.ts';
import { str } from './client-settings.ts';
import { parseCount } from './units.ts';

/** Client threads a run may ask for: far more than any host's cores, far fewer than a process can start. */
const MAX_CLIENT_THREADS = 256;

export const CLIENT_THREADS_FLAGS: Command['flags'] = {
  'client-threads': {
    help:
      'spread the connections over this many client threads, each its own event loop with its own histograms, merged exactly ' +
      '(default and at most: the CPUs this process may run on, as -A narrows them; at most one a connection)',
    spec: { type: 'string' },
  },
};

/** What --client-threads asks for, checked before anything starts; undefined: the default. */
export function askedClientThreads(values: Values): number | undefined {
  const text = str(values, 'client-threads');
  return text === undefined ? undefined : parseCount(text, '--client-threads', 1, MAX_CLIENT_THREADS);
}

/**
 * The threads a run of `connections` uses: asked for, or the CPUs it may run on (read after -A
 * pinned it); never more than connections, nor than those CPUs (threads beyond them take turns
 * on the cores and only add their start-up and their memory). Fewer than asked for is said.
 */
export function clientThreadsFor(asked: number | undefined, connections: number, io: Io): number {
  const cpus = availableParallelism();
  const threads = Math.min(connections, asked ?? cpus, cpus);
  if (asked !== undefined && threads < asked) {
    const why = threads === cpus ? `this process may run on ${cpus} CPU(s)` : `there are ${connections} connection(s) to share`;
    io.err(`note: --client-threads ${asked}: ${why}; using ${threads} thread(s)`);
  }
  return threads;
}
