import type { ServerOptions } from '../../transport/server/options.ts';
import type { ConnectOptions } from '../../transport/client/connect.ts';
import { clearlyBetter, type Objective, type Ranked } from './rank.ts';
import { changesFromDefault, configLabel, describeBuffer, isDefaultConfig, type TuneConfig, type Workload } from './space.ts';

export interface Recommendation {
  config: TuneConfig;
  label: string;
  /** 'better': the winner beats the default beyond the noise; 'same': keep the default. */
  versusDefault: 'better' | 'same';
  /** Winner's median over the default's, > 1 meaning better. */
  ratioToDefault: number;
  /** null when tuning a raw service: its server is not socktune's to configure. */
  createServer: ServerOptions | null;
  connect: ConnectOptions;
  cli: string;
  /** Things no socket option expresses, for the application to do (e.g. pipelining). */
  advice: string[];
  sysctl: string[];
}

export function socketOptionsOf(config: TuneConfig): { sendBufferSize?: number; receiveBufferSize?: number; noDelay: boolean } {
  return {
    ...(config.bufferSize === undefined ? {} : { sendBufferSize: config.bufferSize, receiveBufferSize: config.bufferSize }),
    noDelay: config.noDelay,
  };
}

/**
 * The paste-ready result, agreeing with the ranking's verdicts: the winner is, among the configs
 * the table calls better than the default (measured twice or more, not clearly beaten by the
 * best), the one with the fewest changes from the default; when none is, the default wins (a win
 * inside the noise is not worth a change).
 */
export function recommend(
  ranking: Ranked<TuneConfig>[],
  objective: Objective,
  workload: Workload,
  size: number,
  conns: number,
  cappedSysctls: string[],
  raw = false,
  /** stream's trials sent with sendfile: the command to paste says -Z, to reproduce them. */
  zeroCopy = false,
): Recommendation | undefined {
  const best = ranking[0];
  if (!best) return undefined;
  const baseline = ranking.find((entry) => isDefaultConfig(entry.config, workload));
  const contenders =
    baseline === undefined
      ? [best]
      : ranking.filter(
          (entry) =>
            entry !== baseline &&
            entry.standing !== 'worse' &&
            (entry === best ? clearlyBetter(best, baseline, objective) : entry.verdict === 'better' && entry.samples.length >= 2),
        );
  const wins = contenders.length > 0;
  const chosen = wins
    ? contenders.reduce((simplest, entry) =>
        changesFromDefault(entry.config, workload) < changesFromDefault(simplest.config, workload) ? entry : simplest,
      )
    : baseline!;
  const { config } = chosen;
  const socket = socketOptionsOf(config);
  const flags = [
    raw ? `socktune ${workload} --raw -c HOST:PORT` : `socktune ${workload} -c HOST`,
    workload === 'stream'
      ? `-l ${describeBuffer(size)} -P ${conns}${zeroCopy ? ' -Z' : ''}`
      : `--size ${size} -C ${conns}${workload === 'msg' ? ' --echo' : ''} --depth ${config.depth}`,
    config.batch === 'auto' ? '' : `--batch ${config.batch}`,
    config.ioModel === 'loop' || raw ? '' : `--io-model ${config.ioModel}`,
    config.bufferSize === undefined ? '' : `-w ${describeBuffer(config.bufferSize)}`,
    config.noDelay ? '' : '--nagle',
  ];
  return {
    config,
    label: configLabel(config, workload, raw),
    versusDefault: wins ? 'better' : 'same',
    ratioToDefault: chosen.vsBaseline,
    createServer: raw ? null : { ioModel: config.ioModel, ...socket },
    connect: { ...socket },
    cli: flags.filter(Boolean).join(' '),
    advice: adviceFor(config, workload),
    sysctl: config.bufferSize === undefined ? [] : cappedSysctls,
  };
}

/** What the application itself must do: no socket option expresses pipelining or message batching. */
function adviceFor(config: TuneConfig, workload: Workload): string[] {
  const advice: string[] = [];
  if (workload === 'msg') {
    advice.push(
      config.batch === 'auto'
        ? 'send through MessageSocket (writes coalesced once per tick)'
        : 'one write per message won here: MessageSocket with { batch: 1 }',
    );
  }
  if (config.depth > 1)
    advice.push(`keep ${config.depth} ${workload === 'msg' ? 'messages' : 'requests'} in flight per connection (pipelining)`);
  return advice;
}
