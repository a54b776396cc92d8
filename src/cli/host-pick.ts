import { SocktuneError } from '../core/errors.ts';
import { str } from './client-settings.ts';
import type { Values } from './command.ts';
import { parseCount } from './units.ts';

/** The most hosts one `-c` list may name. */
export const MAX_PICK_HOSTS = 10_000;
/** The largest `--pick`: an Indexed Job's completion index stays below 100 000. */
export const MAX_PICK = 1_000_000;

function usage(message: string): SocktuneError {
  return new SocktuneError('SOCKTUNE_ERR_USAGE', message);
}

/**
 * Entry `pick` mod the list's length of a comma list of hosts (`HOST` or `HOST:PORT` each). Clients
 * that share one list and count their own `pick` from 0 (an Indexed Job's completion index) land
 * evenly, client i on host i mod M, with no arithmetic where the list is written.
 */
export function pickHost(list: string, pickText: string): string {
  const hosts = list.split(',');
  if (hosts.length > MAX_PICK_HOSTS) throw usage(`-c lists ${hosts.length} hosts; at most ${MAX_PICK_HOSTS}`);
  const empty = hosts.findIndex((host) => host.trim() === '');
  if (empty >= 0) throw usage(`-c lists an empty host at position ${empty + 1} of ${hosts.length}: ${JSON.stringify(list)}`);
  if (pickText.startsWith('$('))
    throw usage(
      `--pick got ${JSON.stringify(pickText)}, not expanded: the kubelet expands $(JOB_COMPLETION_INDEX) ` +
        'in the pods of an Indexed Job; elsewhere give the number',
    );
  return hosts[parseCount(pickText, '--pick', 0, MAX_PICK) % hosts.length]!.trim();
}

/** `-c HOST,HOST,... --pick N` becomes `-c` the picked host, before anything resolves it; one host is left as it is. */
export function applyHostPick(values: Values): void {
  const client = str(values, 'client');
  const pick = str(values, 'pick');
  if (pick === undefined) {
    if (client?.includes(','))
      throw usage(
        `-c takes one host, got the list ${JSON.stringify(client)}: add --pick N to reach entry N mod its length ` +
          '(rr, crr, stream, msg, conns)',
      );
    return;
  }
  if (client === undefined) throw usage('--pick N picks a host from -c HOST,HOST,...: give the list with -c');
  values.client = pickHost(client, pick);
}
