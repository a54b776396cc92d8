import { SocktuneError } from '../../../core/errors.ts';
import { createSockperfServer, SOCKPERF_DEFAULT_PORT } from '../../../bench/servers/sockperf/sockperf-server.ts';
import { SOCKPERF_UDP_DEFAULT_MAX_RATE, SockperfUdpServer } from '../../../bench/servers/sockperf/sockperf-udp.ts';
import { availableParallelism } from 'node:os';
import { SendBudget } from '../../../transport/io/send-budget.ts';
import type { Command } from '../../command.ts';
import { serverSettings } from '../../client-settings.ts';
import { BARE_SERVER_FLAGS, bareServerLimits, bareServerRefusals, modelDetail, refuseEnvironmentToken, serveUntilStopped } from './bare.ts';
import { announce, commonServerFlags, jsonLog, listenPort, prepareProcess, untilStopped } from './common.ts';

const PROTOCOL = 'the sockperf protocol';

export const sockperfServerCommand: Command = {
  name: 'server sockperf',
  summary: 'answer stock sockperf clients (pp, ul, tp) in any I/O model',
  usage: `socktune server sockperf [-p ${SOCKPERF_DEFAULT_PORT}] [--bind ADDR] [--io-model MODEL] [--tcp-only] [limits] [--json]`,
  flags: {
    ...commonServerFlags(SOCKPERF_DEFAULT_PORT),
    ...BARE_SERVER_FLAGS,
    'io-model': {
      help: "loop, workers or thread-per-conn (default loop; not io-uring, which serves bytes, not sockperf's protocol)",
      spec: { type: 'string' },
    },
    'tcp-only': {
      help:
        `serve TCP only: by default the port's number answers UDP too (sockperf's default protocol), its replies ` +
        `capped by --max-rate, or ${SOCKPERF_UDP_DEFAULT_MAX_RATE / 1e6} Mbit/s without it (UDP sources can be forged)`,
      spec: { type: 'boolean' },
    },
  },
  refusals: bareServerRefusals(PROTOCOL),
  examples: [
    'socktune server sockperf    # then: sockperf pp --tcp -i 127.0.0.1 -p 11111, or over UDP without --tcp',
    'socktune server sockperf --io-model thread-per-conn --blocking',
    'socktune server --sockperf --io-model workers    # the same, in the older spelling',
  ],
  async run(values, io) {
    refuseEnvironmentToken(PROTOCOL);
    const log = jsonLog(values, io);
    const openFiles = prepareProcess(values);
    const { ioModel, workers, blocking } = serverSettings(values);
    if (ioModel === 'io-uring') {
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        '--io-model io-uring serves the byte services only (echo, discard, verify, source): ' +
          "sockperf's protocol needs loop, workers or thread-per-conn",
      );
    }
    const limits = bareServerLimits(values);
    // One budget for what both sides send, so --max-rate caps the server, not each protocol.
    const budget = typeof limits.maxSendRate === 'number' ? new SendBudget(limits.maxSendRate) : limits.maxSendRate;
    const server = createSockperfServer({
      ...listenPort(values, SOCKPERF_DEFAULT_PORT),
      ioModel,
      ...(workers === undefined ? {} : { workers }),
      blocking: blocking === true,
      ...limits,
      ...(budget === undefined ? {} : { maxSendRate: budget }),
    });
    const stopped = untilStopped();
    const address = await server.listen();
    // The thread models serve UDP on threads of their own too, each a blocking socket of the port's SO_REUSEPORT group.
    const udpThreads = ioModel === 'loop' ? 0 : (workers ?? availableParallelism());
    const udp = values['tcp-only'] === true || address.family === 'unix' ? undefined : new SockperfUdpServer(budget, udpThreads);
    if (udp !== undefined && address.family !== 'unix') await udp.listen(address.address, address.port);
    const udpDetail =
      udp === undefined
        ? ''
        : `; UDP too${udpThreads > 0 ? ` on ${udpThreads} thread(s)` : ''}, replies at most ${udp.bitsPerSecond / 1e6} Mbit/s`;
    announce(io, log, 'socktune sockperf server', address, openFiles, `${modelDetail(server)}${udpDetail}`);
    // sockperf pp waits for every reply: one the cap held back stalls it, so the first is said at once.
    const capWatch = setInterval(() => {
      if (udp === undefined || udp.counts.overRate === 0) return;
      clearInterval(capWatch);
      io.err(
        `UDP: replies over the cap of ${udp.bitsPerSecond / 1e6} Mbit/s are not sent, and sockperf pp waits for them: ` +
          'start the server with a higher --max-rate',
      );
    }, 1000);
    try {
      return await serveUntilStopped(server, io, log, stopped);
    } finally {
      clearInterval(capWatch);
      await udp?.close();
      if (udp !== undefined && udp.counts.overRate > 0)
        io.err(`UDP: ${udp.counts.overRate} replies not sent, over the reply rate of ${udp.bitsPerSecond / 1e6} Mbit/s`);
    }
  },
};
