import { readFileSync } from 'node:fs';
import { SocktuneError } from '../core/errors.ts';
import { flagText, type Command, type Values } from './command.ts';
import { str } from './client-settings.ts';
import { MAX_REQUEST_BYTES, parseSize } from './units.ts';

export const REQUEST_FLAGS: Command['flags'] = {
  size: { help: 'request bytes', spec: { type: 'string' }, default: '64' },
  'response-size': { help: '--raw: response bytes to wait for (default: the request size, an echo)', spec: { type: 'string' } },
  payload: { help: '--raw: send this file as the request instead of filler bytes', spec: { type: 'string' } },
};

/** Request and response sizes; a socktune server echoes, so only --raw may ask for another size or a payload. */
export function requestSettings(values: Values): { size: number; responseSize?: number; payload?: Buffer } {
  const responseText = str(values, 'response-size');
  const payloadPath = str(values, 'payload');
  if (!values.raw && (responseText !== undefined || payloadPath !== undefined)) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      '--response-size and --payload drive other services: use them with --raw (a socktune server echoes)',
    );
  }
  let payload: Buffer | undefined;
  if (payloadPath !== undefined) {
    try {
      payload = readFileSync(payloadPath);
    } catch (error) {
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--payload: cannot read ${payloadPath}: ${(error as Error).message}`);
    }
    if (payload.length === 0) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--payload: ${payloadPath} is empty`);
  }
  const size = payload?.length ?? parseSize(flagText(values, REQUEST_FLAGS, 'size')!, '--size', MAX_REQUEST_BYTES);
  return {
    size,
    ...(responseText === undefined ? {} : { responseSize: parseSize(responseText, '--response-size', MAX_REQUEST_BYTES) }),
    ...(payload ? { payload } : {}),
  };
}
