import type { IoModel } from '../../transport/server-options.ts';

/** One point of the search space, applied to both ends. */
export interface TuneConfig {
  /** SO_SNDBUF and SO_RCVBUF request; undefined leaves the kernel default and autotuning. */
  bufferSize: number | undefined;
  noDelay: boolean;
  ioModel: IoModel;
  /** rr only: requests in flight per connection. */
  depth: number;
}

export const BUFFER_SIZES: readonly (number | undefined)[] = [undefined, 8 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];
export const IO_MODEL_CHOICES: readonly IoModel[] = ['loop', 'workers', 'thread-per-conn'];

export const DEFAULT_CONFIG: TuneConfig = Object.freeze({ bufferSize: undefined, noDelay: true, ioModel: 'loop', depth: 1 });

export function isDefaultConfig(config: TuneConfig): boolean {
  return config.bufferSize === undefined && config.noDelay && config.ioModel === 'loop' && config.depth === 1;
}

export function describeBuffer(size: number | undefined): string {
  if (size === undefined) return 'auto';
  return size >= 1024 * 1024 ? `${size / (1024 * 1024)}M` : `${size / 1024}K`;
}

export function configLabel(config: TuneConfig, workload: 'stream' | 'rr'): string {
  const parts = [`buf ${describeBuffer(config.bufferSize)}`, config.ioModel];
  if (workload === 'rr') parts.push(config.noDelay ? 'nodelay' : 'nagle', `depth ${config.depth}`);
  return parts.join(' · ');
}

export interface SpaceChoices {
  workload: 'stream' | 'rr';
  quick: boolean;
}

/**
 * The grid: buffer sizes × I/O models, and for request/response also Nagle and pipelining depth.
 * --quick keeps the dimensions that matter most for the workload so successive halving can
 * finish in under a minute on two cores.
 */
export function searchSpace({ workload, quick }: SpaceChoices): TuneConfig[] {
  const noDelays = workload === 'rr' && !quick ? [true, false] : [true];
  const depths = workload === 'rr' ? (quick ? [1, 8] : [1, 4, 16]) : [1];
  const buffers = workload === 'rr' && quick ? [undefined, 8 * 1024, 256 * 1024] : BUFFER_SIZES;
  const configs: TuneConfig[] = [];
  for (const bufferSize of buffers) {
    for (const ioModel of IO_MODEL_CHOICES) {
      for (const noDelay of noDelays) for (const depth of depths) configs.push({ bufferSize, noDelay, ioModel, depth });
    }
  }
  return configs;
}
