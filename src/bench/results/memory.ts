import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Process memory, so per-connection costs can be derived on either end (conns). */
export interface ProcessMemory {
  rssBytes: number;
  heapUsedBytes: number;
}

let collectGarbage: (() => void) | undefined;

/**
 * Process memory; with `settle`, after a full garbage collection, so that a before/after
 * difference measures what is held, not what happens to be uncollected.
 */
export function processMemory(settle = false): ProcessMemory {
  if (settle) {
    collectGarbage ??= (() => {
      v8.setFlagsFromString('--expose-gc');
      return runInNewContext('gc') as () => void;
    })();
    collectGarbage();
  }
  const usage = process.memoryUsage();
  return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed };
}

/**
 * The server's heap per held connection: its main thread's heap, which holds the connections only in
 * the loop model; none where the heap shrank over the test (a collection freed more than the
 * connections took: no figure per connection, only noise).
 */
export function heapPerConnection(ioModel: string, grownBytes: number, connections: number): number | null {
  if (ioModel !== 'loop' || grownBytes < 0) return null;
  return Math.round(grownBytes / Math.max(1, connections));
}
