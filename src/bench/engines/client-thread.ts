import { parentPort, workerData } from 'node:worker_threads';
import { SocktuneError } from '../../core/errors.ts';
import { ownThreadCpuMicros } from '../../core/thread-cpu.ts';
import type { CrrResult, MsgInterval, MsgResult, RrInterval, RrResult } from '../results/result.ts';
import type { ClientThreadData, FromClientThread, ToClientThread } from './client-thread-messages.ts';
import { runCrr } from './crr.ts';
import { runRr } from './rr.ts';
import { runMsg } from './msg.ts';

/**
 * One client thread of rr, crr or msg --client-threads: the engine itself, on its share of the
 * connections, to the test the main thread started. It says when it is ready, starts its traffic
 * when told, sends each interval as it ends, and its result (or its failure) last.
 */
const data = workerData as ClientThreadData;
const port = parentPort!;
const post = (message: FromClientThread): void => port.postMessage(message);
const interrupt = new AbortController();
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));
port.on('message', (message: ToClientThread) => {
  if (message.type === 'go') release();
  else interrupt.abort();
});

let cpuAtStart = ownThreadCpuMicros();
let startedAt = performance.now();
const hooks = {
  onInterval: (interval: RrInterval | MsgInterval) => post({ type: 'interval', interval }),
  interrupt: interrupt.signal,
  beforeTraffic: async (): Promise<void> => {
    post({ type: 'ready' });
    await released;
    cpuAtStart = ownThreadCpuMicros();
    startedAt = performance.now();
  },
};
/** A payload crossed as a Uint8Array: the engines take a Buffer. */
const crossed = data.command === 'msg' ? undefined : data.options.payload;
const payload = crossed === undefined ? undefined : Buffer.from(crossed);

try {
  let result: RrResult | CrrResult | MsgResult;
  if (data.command === 'rr') result = await runRr({ ...data.options, payload, ...hooks });
  else if (data.command === 'crr') result = await runCrr({ ...data.options, payload, ...hooks });
  else result = await runMsg({ ...data.options, ...hooks });
  const cpuMicros = ownThreadCpuMicros() - cpuAtStart;
  const wallMicros = (performance.now() - startedAt) * 1000;
  post({ type: 'result', result, cpuPercent: wallMicros > 0 ? (cpuMicros / wallMicros) * 100 : 0 });
} catch (error) {
  const code = error instanceof SocktuneError ? error.code : undefined;
  post({ type: 'error', message: error instanceof Error ? error.message : String(error), ...(code === undefined ? {} : { code }) });
} finally {
  // Nothing more will be told: the listener must not keep the thread alive.
  port.unref();
}
