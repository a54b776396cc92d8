import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';

/** Milliseconds a connection has to send the connection token before it is closed. */
export const CONNECTION_TOKEN_TIMEOUT_MS = 10_000;

/**
 * Reads the token a client must send first on a connection of a server with `connectionToken`.
 * Resolves with the bytes that came after the token (to be served as the connection's first
 * read), or undefined when the token was wrong, late, or the peer went away.
 */
export function readConnectionToken(socket: Socket, token: Buffer, timeoutMs = CONNECTION_TOKEN_TIMEOUT_MS): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received < token.length) return;
      stop();
      const bytes = Buffer.concat([...chunks, ...unread(socket)]);
      resolve(timingSafeEqual(bytes.subarray(0, token.length), token) ? bytes.subarray(token.length) : undefined);
    };
    const onClose = (): void => {
      stop();
      resolve(undefined);
    };
    const timer = setTimeout(onClose, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => {});
    socket.resume();
  });
}

/**
 * What the paused stream had read past the last 'data' event (no listener is left to see it), so no byte is lost when its descriptor
 * moves on.
 */
function unread(socket: Socket): Buffer[] {
  const rest: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) rest.push(chunk);
  return rest;
}

/**
 * The connections of one server still reading their token: open connections for the limits, and
 * cut when the server closes, so a token's wait never holds a close past its timeout and no
 * connection is let in after it began.
 */
export class TokenReaders {
  readonly #sockets = new Set<Socket>();
  #closed = false;

  get size(): number {
    return this.#sockets.size;
  }

  /**
   * Serves `socket` with the bytes that came after its token once it came (`serve`), or closes it
   * (`refused`: `authFailure` true for a wrong, late or missing token, false when the server was closing).
   */
  admit(socket: Socket, token: Buffer, serve: (leftover: Buffer) => void, refused: (authFailure: boolean) => void): void {
    void this.#read(socket, token).then((leftover) => {
      if (leftover !== undefined && !socket.destroyed) return serve(leftover);
      socket.destroy();
      refused(!this.#closed);
    });
  }

  async #read(socket: Socket, token: Buffer): Promise<Buffer | undefined> {
    if (this.#closed) return undefined;
    this.#sockets.add(socket);
    try {
      const leftover = await readConnectionToken(socket, token);
      return this.#closed ? undefined : leftover;
    } finally {
      this.#sockets.delete(socket);
    }
  }

  close(): void {
    this.#closed = true;
    for (const socket of this.#sockets) socket.destroy();
  }
}
