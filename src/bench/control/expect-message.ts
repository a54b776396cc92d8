import { ERROR_CODES, SocktuneError, type ErrorCode } from '../../core/errors.ts';
import type { Secret } from '../../core/secret.ts';
import { authProof } from './auth.ts';
import type { ControlChannel } from './control-channel.ts';
import type { ServerMessage } from './control-protocol.ts';
import { parseServerMessage } from './server-messages.ts';

/**
 * The server's next message, which must be of `type` (or one of them); its error message becomes a SocktuneError
 * with the server's code. `handshake` is given for the answer to a client's first message: there a
 * challenge may come first, answered with the token (or refused without one) over `firstText`.
 */
export async function expectMessage<T extends ServerMessage['type']>(
  channel: ControlChannel,
  type: T | readonly T[],
  timeoutMs: number,
  handshake?: { token: Secret | undefined; startText: string },
): Promise<Extract<ServerMessage, { type: T }>> {
  const types: readonly string[] = typeof type === 'string' ? [type] : type;
  const what = `${types.join(' or ')} message from the server`;
  let message = parseServerMessage(await channel.next(timeoutMs, what));
  if (message.type === 'challenge' && handshake !== undefined) {
    if (handshake.token === undefined) {
      channel.socket.destroy();
      throw new SocktuneError('SOCKTUNE_ERR_AUTH', 'the server needs an auth token: give it with --auth-token or SOCKTUNE_AUTH_TOKEN');
    }
    channel.send({ type: 'auth', proof: authProof(handshake.token, message.nonce, handshake.startText) });
    message = parseServerMessage(await channel.next(timeoutMs, what));
  }
  if (message.type === 'error') {
    channel.socket.destroy();
    const known = (ERROR_CODES as readonly string[]).includes(message.code);
    // The message was checked to hold no control character: a server cannot paint the client's terminal.
    throw new SocktuneError(known ? (message.code as ErrorCode) : 'SOCKTUNE_ERR_PROTOCOL', `server: ${message.message}`);
  }
  if (!types.includes(message.type))
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `expected a ${types.join(' or ')} message, got ${message.type}`);
  return message as Extract<ServerMessage, { type: T }>;
}
