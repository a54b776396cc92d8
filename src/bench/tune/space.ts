import type { IoModel } from '../../transport/server/options.ts';

/** One point of the search space, applied to both ends. */
export interface TuneConfig {
  /** SO_SNDBUF and SO_RCVBUF request; undefined leaves the kernel default and autotuning. */
  bufferSize: number | undefined;
  noDelay: boolean;
  ioModel: IoModel;
  /** rr and msg: requests (messages) in flight per connection. */
  depth: number;
  /** msg only: 'auto' coalesces writes once per tick; 1 writes every message on its own. */
  batch: 'auto' | 1;
}

export type Workload = 'stream' | 'rr' | 'msg';

export const BUFFER_SIZES: readonly (number | undefined)[] = [undefined, 8 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];
export const IO_MODEL_CHOICES: readonly IoModel[] = ['loop', 'workers', 'thread-per-conn'];

/** socktune's defaults for a workload: the baseline every other config is compared with. */
export function defaultConfig(workload: Workload): TuneConfig {
  return { bufferSize: undefined, noDelay: true, ioModel: 'loop', depth: workload === 'msg' ? 16 : 1, batch: 'auto' };
}

/** How many knobs differ from the default: fewer changes are easier to apply and to trust. */
export function changesFromDefault(config: TuneConfig, workload: Workload): number {
  const baseline = defaultConfig(workload);
  return (Object.keys(baseline) as (keyof TuneConfig)[]).filter((key) => config[key] !== baseline[key]).length;
}

export function isDefaultConfig(config: TuneConfig, workload: Workload): boolean {
  return changesFromDefault(config, workload) === 0;
}

export function describeBuffer(size: number | undefined): string {
  if (size === undefined) return 'auto';
  return size >= 1024 * 1024 ? `${size / (1024 * 1024)}M` : `${size / 1024}K`;
}

export function configLabel(config: TuneConfig, workload: Workload, raw = false): string {
  const parts = raw ? [`buf ${describeBuffer(config.bufferSize)}`] : [`buf ${describeBuffer(config.bufferSize)}`, config.ioModel];
  if (workload === 'rr') parts.push(config.noDelay ? 'nodelay' : 'nagle', `depth ${config.depth}`);
  if (workload === 'msg') parts.push(config.batch === 'auto' ? 'coalesced' : 'write per msg', `depth ${config.depth}`);
  return parts.join(' · ');
}

export interface SpaceChoices {
  workload: Workload;
  quick: boolean;
  /** A service socktune does not control: only client-side knobs (buffers, Nagle, depth) are swept. */
  raw?: boolean;
  /** Only these I/O models (the default, loop, is always kept: every verdict is against it). @default every model */
  ioModels?: readonly IoModel[] | undefined;
  /** Only these buffer sizes, undefined for the kernel's autotuning (always kept, as the default). @default the grid's sizes */
  bufferSizes?: readonly (number | undefined)[] | undefined;
}

/**
 * The grid: buffer sizes × I/O models, and for request/response also Nagle and pipelining depth.
 * --quick keeps the dimensions that matter most for the workload so successive halving can
 * finish in under a minute on two cores.
 */
export function searchSpace({ workload, quick, raw = false, ioModels, bufferSizes }: SpaceChoices): TuneConfig[] {
  // Nagle and pipelining depth move request/response the most (bench/results/tune-validation: a quick grid
  // without them picked 0.32–0.37× of the full sweep's best), so --quick keeps them and trims buffer sizes instead.
  const noDelays = workload === 'rr' ? [true, false] : [true];
  // io-uring serves bytes, not msg's framed messages: a msg grid leaves it out.
  const models = raw
    ? (['loop'] as const)
    : withDefault(IO_MODEL_CHOICES, ioModels, 'loop').filter((model) => workload !== 'msg' || model !== 'io-uring');
  const depths = workload === 'stream' ? [1] : workload === 'msg' ? (quick ? [16] : [1, 16, 64]) : quick ? [1, 16] : [1, 4, 16];
  const batches: TuneConfig['batch'][] = workload === 'msg' ? ['auto', 1] : ['auto'];
  const buffers = withDefault(
    workload === 'stream' || !quick ? BUFFER_SIZES : workload === 'rr' ? [undefined, 256 * 1024] : [undefined, 8 * 1024, 256 * 1024],
    bufferSizes,
    undefined,
  );
  const configs: TuneConfig[] = [];
  for (const bufferSize of buffers) {
    for (const ioModel of models) {
      for (const noDelay of noDelays) {
        for (const depth of depths) for (const batch of batches) configs.push({ bufferSize, noDelay, ioModel, depth, batch });
      }
    }
  }
  return configs;
}

/** The values the user asked for (else the grid's), each once, the default first and never left out. */
function withDefault<T>(grid: readonly T[], asked: readonly T[] | undefined, fallback: T): readonly T[] {
  return [...new Set([fallback, ...(asked ?? grid)])];
}
