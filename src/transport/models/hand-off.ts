import { Server, type Socket } from 'node:net';
import { duplicateFd } from '../../core/socket-syscalls.ts';
import { countedErrorOf } from '../../core/errors.ts';
import { type Admitted, PeerCounts, admit } from '../server/admission.ts';
import { TokenReaders } from '../server/connection-token.ts';
import { fdOf } from '../io/fd.ts';
import { type BoundSocket, listenOn } from '../server/listen-socket.ts';
import { SharedCounters } from '../server/metrics.ts';
import type { ResolvedServerOptions } from '../server/options.ts';
import { closeServer, type ModelHooks } from './model.ts';

/**
 * Accepts on the main thread and gives each admitted connection's descriptor to `dispatch`, which
 * owns it from then on (the thread that serves it uncounts its address when it closes); over the
 * limits (`openNow()`, by default those open in the threads) it closes it.
 */
export async function acceptAndHandOff(
  bound: BoundSocket,
  options: ResolvedServerOptions,
  hooks: ModelHooks,
  peers: PeerCounts,
  dispatch: (connection: Admitted) => void,
  openNow?: () => number,
): Promise<{ close(): Promise<void> }> {
  const counters = new SharedCounters(hooks.countersBuffer, 0);
  // Connections reading their token here are open too, though no thread has them yet.
  const readers = new TokenReaders();
  const openInThreads = openNow ?? ((): number => counters.openEverywhere());
  const open = (): number => openInThreads() + readers.size;
  const limits = { maxConnections: options.maxConnections, allowedPeers: options.allowedPeers, peers };
  const handOff = (socket: Socket, peer: string, leftover: Buffer | undefined): void => {
    let fd: number;
    try {
      fd = duplicateFd(fdOf(socket));
    } catch (error) {
      // Out of descriptors (EMFILE): this newcomer is refused, the others go on.
      peers.remove(peer);
      hooks.onError(countedErrorOf(error));
      return;
    } finally {
      socket.destroy();
    }
    dispatch({ fd, peer, leftover });
  };
  const token = options.connectionToken === undefined ? undefined : Buffer.from(options.connectionToken);
  const server = new Server({ pauseOnConnect: true, noDelay: options.noDelay, keepAlive: options.keepAlive }, (socket) => {
    const admitted = admit(socket, open(), limits);
    if ('refusal' in admitted) {
      socket.destroy();
      hooks.onError(admitted.refusal);
      return;
    }
    if (token === undefined) return handOff(socket, admitted.peer, undefined);
    readers.admit(
      socket,
      token,
      (leftover) => handOff(socket, admitted.peer, leftover),
      (authFailure) => {
        peers.remove(admitted.peer);
        if (authFailure) hooks.onError('SOCKTUNE_ERR_AUTH');
      },
    );
  });
  await listenOn(server, bound, options.backlog, hooks.onError);
  return {
    close: () => {
      readers.close();
      return closeServer(server);
    },
  };
}
