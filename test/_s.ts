import { BenchServer } from '../src/bench/bench-server.ts';
import { runStream } from '../src/bench/stream.ts';
import { runRr } from '../src/bench/rr.ts';
const server = new BenchServer({ port: 0 });
const addr = (await server.listen()) as { port: number };
const target = { host: '127.0.0.1', port: addr.port };
for (const direction of ['forward', 'reverse', 'bidir'] as const) {
  const r = await runStream({ target, durationSec: 1, omitSec: 0, writeSize: 131072, parallel: 2, direction, client: {}, server: { ioModel: 'loop' }, verify: true, intervalSec: 0.5 });
  console.log(direction, (r.summary.bitsPerSecond / 1e9).toFixed(2), 'Gbit/s', r.summary.sender, r.summary.receiver, r.summary.verify, r.summary.retransmits, r.selfCheck, r.summary.serverCpuPercent);
}
const rr = await runRr({ target, durationSec: 1, omitSec: 0.2, size: 64, connections: 4, depth: 1, client: {}, server: { ioModel: 'workers', workers: 2 }, intervalSec: 0.5 });
console.log(rr.summary.requestsPerSecond, rr.summary.latency, rr.intervals.length);
const ol = await runRr({ target, durationSec: 1, omitSec: 0, size: 64, connections: 2, depth: 4, rate: 5000, client: {}, server: {}, intervalSec: 0.5 });
console.log('open', ol.summary.requestsPerSecond, ol.summary.latency.p99Us);
await server.close();
