import type { Secret } from '../../core/secret.ts';
import { SocktuneError } from '../../core/errors.ts';
import { connect } from '../../transport/client/connect.ts';
import { ControlChannel } from './control-channel.ts';
import { explainHandshakeFailure } from './stranger.ts';
import type { DataTarget, PeerServerInfo, TestPeer } from './peer.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  type ReadyMessage,
  type ResultMessage,
  type TestServerSettings,
  type TestService,
  type UdpSourceSettings,
} from './control-protocol.ts';
import { expectMessage } from './expect-message.ts';

export interface ServerTarget {
  host: string;
  port: number;
  path?: string | undefined;
  /** The server's shared secret, for servers started with --auth-token. */
  authToken?: Secret | undefined;
}

export const CONTROL_TIMEOUT_MS = 10_000;

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
    service: TestService,
    server: TestServerSettings,
    maxDurationMs: number,
    settleMemory = false,
    dataFrom: string[] = [],
    udp?: UdpSourceSettings,
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
      ...(udp === undefined ? {} : { udp }),
    };
    const startText = JSON.stringify(start);
    channel.send(start);
    let reply: ReadyMessage;
    try {
      reply = await expectMessage(channel, 'ready', CONTROL_TIMEOUT_MS, { token: target.authToken, startText });
    } catch (error) {
      socket.destroy();
      throw explainHandshakeFailure(error, target, channel.firstBytes, startText);
    }
    let data: DataTarget;
    try {
      data = dataTarget(reply, target, socket.remoteAddress);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return new RemoteTest(channel, reply, data);
  }

  /** Tells the server the test is over and returns what it counted. */
  async finish(): Promise<ResultMessage> {
    this.#channel.send({ type: 'finish' });
    try {
      return await expectMessage(this.#channel, 'result', CONTROL_TIMEOUT_MS);
    } finally {
      this.#channel.close();
    }
  }

  abort(): void {
    this.#channel.socket.destroy();
  }
}

/**
 * Where the test's data connections go, as far as the client lets a server say: over TCP, a port of
 * the address the control connection reached; over a Unix socket, a path beside the client's own.
 * A server must not send the client's connections to a socket of the client's choosing (a local
 * daemon's control socket), nor make them say more than the 16-byte token.
 */
function dataTarget(reply: ReadyMessage, target: ServerTarget, controlAddress: string | undefined): DataTarget {
  const preamble = reply.dataToken === undefined ? {} : { preamble: Buffer.from(reply.dataToken, 'hex') };
  if (target.path !== undefined) {
    if (
      reply.dataPath === undefined ||
      !reply.dataPath.startsWith(`${target.path}.test`) ||
      !/^\d+$/.test(reply.dataPath.slice(target.path.length + 5))
    ) {
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the server named a data socket that is not beside ${target.path}: refused`);
    }
    return { path: reply.dataPath, ...preamble };
  }
  if (reply.dataPath !== undefined || reply.dataPort < 1) {
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the server named a Unix socket or no port for a test reached over TCP: refused');
  }
  return { host: controlAddress ?? target.host, port: reply.dataPort, ...preamble };
}
