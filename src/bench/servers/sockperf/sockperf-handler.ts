import type { Socket } from 'node:net';
import { SocktuneError } from '../../../core/errors.ts';
import type { BlockingConnection } from '../../../transport/models/blocking-connection.ts';
import type { ReadContext } from '../../../transport/server/options.ts';
import { ReplyWriter, SockperfDecoder, wantsReply } from '../../../protocols/sockperf/codec.ts';

/**
 * A sockperf server connection (a ReadHandler: each read arrives as a view of a shared buffer).
 * Every message asking for a reply is answered with the CLIENT flag cleared; the replies a read
 * completes go out in one write.
 */
export default function sockperfReads(socket: Socket, context: ReadContext): (view: Buffer) => void {
  const decoder = new SockperfDecoder(context.bufferBudget);
  socket.once('close', () => decoder.dispose());
  const replies = new ReplyWriter();
  const onMessage = (message: Buffer): void => {
    if (wantsReply(message)) replies.add(message);
  };
  // A peer that does not read its replies stops being read from until it does.
  const send = (): void => {
    if (!socket.write(replies.take())) socket.pause();
  };
  socket.on('drain', () => socket.resume());
  socket.on('end', () => {
    try {
      decoder.end();
    } catch (error) {
      socket.destroy(error as SocktuneError);
    }
  });
  return (view) => {
    try {
      decoder.push(view, onMessage);
    } catch (error) {
      // Replies already complete still go out, then the connection closes with the decoder's error code.
      if (replies.length > 0) send();
      socket.destroy(error as SocktuneError);
      return;
    }
    if (replies.length > 0) send();
  };
}

const READ_BUFFER_SIZE = 256 * 1024;

/** The same service in the classic blocking style, for thread-per-conn with `blocking: true`. */
export function blocking(connection: BlockingConnection): void {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  const decoder = new SockperfDecoder(connection.bufferBudget);
  const replies = new ReplyWriter();
  try {
    for (let count = connection.recv(buffer); count > 0; count = connection.recv(buffer)) {
      decoder.push(buffer.subarray(0, count), (message) => {
        if (wantsReply(message)) replies.add(message);
      });
      if (replies.length > 0) connection.sendAll(replies.take());
    }
    decoder.end();
  } finally {
    decoder.dispose();
  }
}
