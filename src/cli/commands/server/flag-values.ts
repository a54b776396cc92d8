import { SocktuneError } from '../../../core/errors.ts';
import type { Values } from '../../command.ts';
import { str } from '../../client-settings.ts';
import { parseCount, parseSeconds, parseSize } from '../../units.ts';

/** A server's limit flags, each checked against the most the server can take. */
export function count(values: Values, flag: string, max: number, min = 1): number | undefined {
  const text = str(values, flag);
  return text === undefined ? undefined : parseCount(text, `--${flag}`, min, max);
}

export function size(values: Values, flag: string, max: number): number | undefined {
  const text = str(values, flag);
  return text === undefined ? undefined : parseSize(text, `--${flag}`, max);
}

/** A duration flag in milliseconds, within what the server can time. */
export function millis(values: Values, flag: string, minMs: number, maxMs: number): number | undefined {
  const text = str(values, flag);
  if (text === undefined) return undefined;
  const ms = Math.round(parseSeconds(text, `--${flag}`) * 1000);
  if (ms < minMs || ms > maxMs)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--${flag} takes ${minMs / 1000} to ${maxMs / 1000} seconds, got ${JSON.stringify(text)}`,
    );
  return ms;
}

/** `--data-ports FROM-TO` (or one port): the range tests' data listeners bind in. */
export function portRange(values: Values, flag: string): { from: number; to: number } | undefined {
  const text = str(values, flag);
  if (text === undefined) return undefined;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text.trim());
  const [from, to] = match === null ? [NaN, NaN] : [Number(match[1]), Number(match[2] ?? match[1])];
  if (!(from >= 1 && from <= to && to <= 65_535))
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--${flag} takes a port range FROM-TO within 1-65535 (e.g. 20000-20999), got ${JSON.stringify(text)}`,
    );
  return { from, to };
}
