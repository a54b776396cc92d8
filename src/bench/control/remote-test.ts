import type { Secret } from '../../core/secret.ts';
import { ERROR_CODES, SocktuneError, type ErrorCode } from '../../core/errors.ts';
import { connect } from '../../transport/connect.ts';
import type { BuiltinService } from '../../transport/server-options.ts';
import { authProof } from './auth.ts';
import { ControlChannel } from './control-channel.ts';
import { explainHandshakeFailure } from './stranger.ts';
import type { DataTarget, PeerServerInfo, TestPeer } from './peer.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  parseServerMessage,
  type ReadyMessage,
  type ResultMessage,
  type TestServerSettings,
} from './control-protocol.ts';

export interface ServerTarget {
  host: string;
  port: number;
  path?: string | undefined;
  /** The server's shared secret, for servers started with --auth-token. */
  authToken?: Secret | undefined;
}

const CONTROL_TIMEOUT_MS = 10_000;

/** One test set up on a remote `socktune server` through its control port. */
export class RemoteTest implements TestPeer {
  readonly ready: ReadyMessage;
  readonly data: DataTarget;
  readonly server: PeerServerInfo;
  readonly #channel: ControlChannel;

  private constructor(channel: ControlChannel, ready: ReadyMessage, data: DataTarget) {
    this.#channel = channel;
    this.ready = ready;
    this.data = data;
    this.server = { effective: ready.effective, environment: ready.environment, warnings: ready.warnings, memory: ready.memory };
  }

  static async start(
    target: ServerTarget,
    service: BuiltinService,
    server: TestServerSettings,
    maxDurationMs: number,
    settleMemory = false,
    dataFrom: string[] = [],
  ): Promise<RemoteTest> {
    const socket = await connect(
      target.path === undefined
        ? { host: target.host, port: target.port, timeout: CONTROL_TIMEOUT_MS }
        : { path: target.path, timeout: CONTROL_TIMEOUT_MS },
    ).catch((error: unknown) => {
      throw explainHandshakeFailure(error, target, Buffer.alloc(0), '');
    });
    const channel = new ControlChannel(socket);
    const start = {
      type: 'start',
      protocol: CONTROL_PROTOCOL_VERSION,
      service,
      server,
      maxDurationMs: Math.ceil(maxDurationMs),
      ...(settleMemory ? { settleMemory } : {}),
      ...(dataFrom.length > 0 ? { dataFrom } : {}),
    };
    const startText = JSON.stringify(start);
    channel.send(start);
    let reply: ReadyMessage;
    try {
      reply = await expect(channel, 'ready', target.authToken === undefined ? undefined : { token: target.authToken, startText });
    } catch (error) {
      socket.destroy();
      throw explainHandshakeFailure(error, target, channel.firstBytes, startText);
    }
    const preamble = reply.dataToken === undefined ? {} : { preamble: Buffer.from(reply.dataToken, 'hex') };
    const data: DataTarget =
      reply.dataPath !== undefined
        ? { path: reply.dataPath, ...preamble }
        : { host: socket.remoteAddress ?? target.host, port: reply.dataPort, ...preamble };
    return new RemoteTest(channel, reply, data);
  }

  /** Tells the server the test is over and returns what it counted. */
  async finish(): Promise<ResultMessage> {
    this.#channel.send({ type: 'finish' });
    try {
      return await expect(this.#channel, 'result');
    } finally {
      this.#channel.close();
    }
  }

  abort(): void {
    this.#channel.socket.destroy();
  }
}

async function expect<T extends 'ready' | 'result'>(
  channel: ControlChannel,
  type: T,
  auth?: { token: Secret; startText: string },
): Promise<Extract<ReadyMessage | ResultMessage, { type: T }>> {
  let message = parseServerMessage(await channel.next(CONTROL_TIMEOUT_MS, `${type} message from the server`));
  if (message.type === 'challenge' && type === 'ready') {
    if (auth === undefined) {
      channel.socket.destroy();
      throw new SocktuneError('SOCKTUNE_ERR_AUTH', 'the server needs an auth token: give it with --auth-token or SOCKTUNE_AUTH_TOKEN');
    }
    channel.send({ type: 'auth', proof: authProof(auth.token, message.nonce, auth.startText) });
    message = parseServerMessage(await channel.next(CONTROL_TIMEOUT_MS, `${type} message from the server`));
  }
  if (message.type === 'error') {
    channel.socket.destroy();
    const known = (ERROR_CODES as readonly string[]).includes(message.code);
    throw new SocktuneError(known ? (message.code as ErrorCode) : 'SOCKTUNE_ERR_PROTOCOL', `server: ${message.message}`);
  }
  if (message.type !== type) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `expected a ${type} message, got ${message.type}`);
  return message as Extract<ReadyMessage | ResultMessage, { type: T }>;
}
