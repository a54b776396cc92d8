import { connect, type ConnectOptions } from '../client/connect.ts';
import { MessageSocket, type MessageOptions } from './message-socket.ts';
import { createServer, type SocktuneServer } from '../server/socktune-server.ts';
import type { ConnectionHandler, ServerOptions } from '../server/options.ts';

const READ_BUFFER_SIZE = 64 * 1024;

/**
 * Connects and speaks length-prefixed messages. Reads land in one reused buffer (Node's
 * `onread`): a received message is a view valid only during its 'message' event; copy it to keep
 * it (the async iterator does so for you).
 */
export async function connectMessages(options: ConnectOptions & { messages?: MessageOptions }): Promise<MessageSocket> {
  const { messages: messageOptions, ...connectOptions } = options;
  let messageSocket: MessageSocket | undefined;
  const socket = await connect({
    ...connectOptions,
    onread: {
      buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
      callback: (bytes: number, buffer: Uint8Array) => {
        messageSocket!.feed((buffer as Buffer).subarray(0, bytes));
        return true;
      },
    },
  });
  messageSocket = new MessageSocket(socket, messageOptions, { readsFrom: 'onread' });
  return messageSocket;
}

/**
 * A connection handler that wraps each socket in a MessageSocket: pass it to createServer (loop),
 * or export it from a handler module for `workers` and `thread-per-conn`.
 */
export function messageHandler(onConnection: (messages: MessageSocket) => void, options: MessageOptions = {}): ConnectionHandler {
  return (socket) => onConnection(new MessageSocket(socket, options));
}

/** createServer whose handler gets MessageSockets (loop model; for threads export messageHandler from a module). */
export function createMessageServer(
  options: ServerOptions & { messages?: MessageOptions },
  onConnection: (messages: MessageSocket) => void,
): SocktuneServer {
  const { messages, ...serverOptions } = options;
  return createServer({ ...serverOptions, handler: messageHandler(onConnection, messages) });
}
