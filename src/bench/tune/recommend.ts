import type { ServerOptions } from '../../transport/server-options.ts';
import type { ConnectOptions } from '../../transport/connect.ts';
import { clearlyBetter, type Objective, type Ranked } from './rank.ts';
import { configLabel, describeBuffer, isDefaultConfig, type TuneConfig } from './space.ts';

export interface Recommendation {
  config: TuneConfig;
  label: string;
  /** 'better': the winner beats the default beyond the noise; 'tie': keep the default. */
  versusDefault: 'better' | 'tie';
  /** Winner's median over the default's, > 1 meaning better. */
  ratioToDefault: number;
  createServer: ServerOptions;
  connect: ConnectOptions;
  cli: string;
  sysctl: string[];
}

export function socketOptionsOf(config: TuneConfig): { sendBufferSize?: number; receiveBufferSize?: number; noDelay: boolean } {
  return {
    ...(config.bufferSize === undefined ? {} : { sendBufferSize: config.bufferSize, receiveBufferSize: config.bufferSize }),
    noDelay: config.noDelay,
  };
}

/**
 * The paste-ready result: the best config when it clearly beats the default, else the default
 * (a win inside the noise is not worth a change).
 */
export function recommend(ranking: Ranked<TuneConfig>[], objective: Objective, workload: 'stream' | 'rr', size: number, conns: number, cappedSysctls: string[]): Recommendation | undefined {
  const best = ranking[0];
  if (!best) return undefined;
  const baseline = ranking.find((entry) => isDefaultConfig(entry.config));
  const wins = !baseline || baseline === best || clearlyBetter(best, baseline, objective);
  const chosen = wins ? best : baseline;
  const { config } = chosen;
  const socket = socketOptionsOf(config);
  const flags = [
    `socktune ${workload} -c HOST`,
    workload === 'stream' ? `-l ${describeBuffer(size)} -P ${conns}` : `--size ${size} -C ${conns} --depth ${config.depth}`,
    config.ioModel === 'loop' ? '' : `--io-model ${config.ioModel}`,
    config.bufferSize === undefined ? '' : `-w ${describeBuffer(config.bufferSize)}`,
    config.noDelay ? '' : '--nagle',
  ];
  return {
    config,
    label: configLabel(config, workload),
    versusDefault: wins && baseline !== best ? 'better' : 'tie',
    ratioToDefault: chosen.vsBaseline,
    createServer: { ioModel: config.ioModel, ...socket },
    connect: { ...socket },
    cli: flags.filter(Boolean).join(' '),
    sysctl: config.bufferSize === undefined ? [] : cappedSysctls,
  };
}
