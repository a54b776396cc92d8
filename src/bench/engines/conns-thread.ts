import { parentPort, workerData } from 'node:worker_threads';
import { HeldSockets } from './conns-open.ts';
import type { ConnsThreadData, FromConnsThread, ToConnsThread } from './conns-thread-messages.ts';

/**
 * One client thread of conns --client-threads: opens its share of the connections when told, says
 * how far it got as it goes, holds them, says how many are still open when asked, and closes them
 * when told (then ends).
 */
const data = workerData as ConnsThreadData;
const port = parentPort!;
const post = (message: FromConnsThread): void => port.postMessage(message);
const held = new HeldSockets();
const interrupt = new AbortController();
/** Progress while opening, as often as the main thread may print it. */
const PROGRESS_MS = 250;

async function open(): Promise<void> {
  const progress = setInterval(() => post({ type: 'progress', opened: held.sockets.length, failed: held.failed }), PROGRESS_MS);
  try {
    await held.open(data.target, { ...data.plan, deadline: performance.now() + data.openTimeoutMs }, interrupt.signal);
    post({ type: 'opened', counts: held.counts() });
  } catch (error) {
    post({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  } finally {
    clearInterval(progress);
  }
}

port.on('message', (message: ToConnsThread) => {
  if (message.type === 'go') void open();
  else if (message.type === 'interrupt') interrupt.abort();
  else if (message.type === 'count') post({ type: 'still-open', stillOpen: held.stillOpen });
  else {
    held.close();
    port.close();
  }
});
post({ type: 'ready' });
