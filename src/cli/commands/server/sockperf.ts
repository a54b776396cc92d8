import { createSockperfServer, SOCKPERF_DEFAULT_PORT } from '../../../bench/servers/sockperf/sockperf-server.ts';
import type { Command } from '../../command.ts';
import { serverSettings } from '../../client-settings.ts';
import { BARE_SERVER_FLAGS, bareServerLimits, bareServerRefusals, modelDetail, refuseEnvironmentToken, serveUntilStopped } from './bare.ts';
import { announce, commonServerFlags, jsonLog, listenPort, prepareProcess, untilStopped } from './common.ts';

const PROTOCOL = 'the sockperf protocol';

export const sockperfServerCommand: Command = {
  name: 'server sockperf',
  summary: 'answer stock sockperf clients (pp, ul, tp) in any I/O model',
  usage: `socktune server sockperf [-p ${SOCKPERF_DEFAULT_PORT}] [--bind ADDR] [--io-model MODEL] [limits] [--json]`,
  flags: { ...commonServerFlags(SOCKPERF_DEFAULT_PORT), ...BARE_SERVER_FLAGS },
  refusals: bareServerRefusals(PROTOCOL),
  examples: [
    'socktune server sockperf    # then: sockperf pp --tcp -i 127.0.0.1 -p 11111',
    'socktune server sockperf --io-model thread-per-conn --blocking',
    'socktune server --sockperf --io-model workers    # the same, in the older spelling',
  ],
  async run(values, io) {
    refuseEnvironmentToken(PROTOCOL);
    const log = jsonLog(values, io);
    const openFiles = prepareProcess(values);
    const { ioModel, workers, blocking } = serverSettings(values);
    const server = createSockperfServer({
      ...listenPort(values, SOCKPERF_DEFAULT_PORT),
      ioModel,
      ...(workers === undefined ? {} : { workers }),
      blocking: blocking === true,
      ...bareServerLimits(values),
    });
    const stopped = untilStopped();
    const address = await server.listen();
    announce(io, log, 'socktune sockperf server', address, openFiles, modelDetail(server));
    return serveUntilStopped(server, io, log, stopped);
  },
};
