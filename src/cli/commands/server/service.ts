import { SocktuneError } from '../../../core/errors.ts';
import { BUILTIN_SERVICES, RING_SERVICES, ringRefusal, type BuiltinService } from '../../../transport/server/options.ts';
import { createServer } from '../../../transport/server/socktune-server.ts';
import type { Command } from '../../command.ts';
import { DEFAULT_CONTROL_PORT, serverSettings } from '../../client-settings.ts';
import { BARE_SERVER_FLAGS, bareServerLimits, bareServerRefusals, modelDetail, refuseEnvironmentToken, serveUntilStopped } from './bare.ts';
import { announce, commonServerFlags, jsonLog, listenPort, prepareProcess, untilStopped } from './common.ts';

const PROTOCOL = 'the bare service port';

export const serviceServerCommand: Command = {
  name: 'server service',
  summary:
    `serve one built-in service (${BUILTIN_SERVICES.join(', ')}) on the port itself, no ` +
    'control channel: a backend for L4 balancers and --raw clients',
  usage: `socktune server service NAME [-p ${DEFAULT_CONTROL_PORT}] [--bind ADDR] [--io-model MODEL] [-w SIZE] [limits] [--json]`,
  positionals: 'NAME',
  positionalChoices: BUILTIN_SERVICES,
  flags: {
    ...commonServerFlags(DEFAULT_CONTROL_PORT),
    ...BARE_SERVER_FLAGS,
    window: { help: 'SO_SNDBUF and SO_RCVBUF of the served sockets, e.g. 256K', spec: { type: 'string', short: 'w' } },
  },
  refusals: bareServerRefusals(PROTOCOL),
  examples: [
    'socktune server service echo -p 7000 --io-model workers --json    # then: socktune rr --raw -c 127.0.0.1:7000',
    'socktune server service discard -p 7001 -w 4M',
    'socktune server --service echo -p 7000    # the same, in the older spelling',
  ],
  async run(values, io, positionals) {
    const [service, ...extra] = positionals;
    if (service === undefined || extra.length > 0 || !(BUILTIN_SERVICES as readonly string[]).includes(service)) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `socktune server service takes one service name, one of ${BUILTIN_SERVICES.join(', ')}, ` +
          `got ${positionals.length === 0 ? 'none' : JSON.stringify(positionals.join(' '))}`,
      );
    }
    refuseEnvironmentToken(PROTOCOL);
    const settings = serverSettings(values);
    const limits = bareServerLimits(values);
    if (settings.ioModel === 'io-uring') refuseRing(service, limits.maxSendRate !== undefined);
    const log = jsonLog(values, io);
    const openFiles = prepareProcess(values);
    const server = createServer({
      ...listenPort(values, DEFAULT_CONTROL_PORT),
      ...settings,
      ...limits,
      handler: service as BuiltinService,
    });
    const stopped = untilStopped();
    const address = await server.listen();
    announce(io, log, `socktune ${service} service`, address, openFiles, modelDetail(server));
    for (const warning of server.warnings) io.err(`warning: ${warning.message}`);
    return serveUntilStopped(server, io, log, stopped);
  },
};

/** What a ring cannot serve, said in the command's own words (NAME, --max-rate) before anything listens. */
function refuseRing(service: string, capped: boolean): void {
  const refusal = ringRefusal(service, capped);
  if (refusal === 'handler')
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--io-model io-uring serves ${RING_SERVICES.join(', ')}, not ${service}: use loop, workers or thread-per-conn for it`,
    );
  if (refusal === 'maxSendRate')
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--max-rate: --io-model io-uring does not pace what ${service} sends; use loop, workers or thread-per-conn to cap it`,
    );
}
