import { describeBuffer, type TuneConfig } from './space.ts';
import type { ScenarioResult } from './run.ts';

/** What is known to cost a configuration its rank, from the mechanism itself rather than from its number. */
export function whyItLost(config: TuneConfig, scenario: Pick<ScenarioResult, 'workload' | 'ranking'>): string {
  if (scenario.workload === 'stream' && config.bufferSize !== undefined && config.bufferSize <= SMALL_BUFFER_BYTES) {
    return `a ${describeBuffer(config.bufferSize)} buffer caps the TCP window: rate ≤ buffer ÷ round-trip time`;
  }
  const best = scenario.ranking[0]?.config;
  if (scenario.workload !== 'stream' && best !== undefined && config.depth < best.depth) {
    return `${config.depth} in flight per connection: each waits its round trip (the best keeps ${best.depth})`;
  }
  return '';
}

/** Buffers at or under this cap a stream by the window they allow. */
const SMALL_BUFFER_BYTES = 64 * 1024;

/** The notes column of a ranking row, in the terminal table and the report alike. */
export function rankingNotes(entry: ScenarioResult['ranking'][number], scenario: Pick<ScenarioResult, 'workload' | 'ranking'>): string {
  const finalRound = Math.max(...scenario.ranking.map((other) => other.lastRound));
  return [
    entry.lastRound < finalRound ? `dropped after round ${entry.lastRound}` : '',
    entry.clientSaturated ? 'client saturated' : '',
    entry.capped ? 'buffer capped by kernel' : '',
    entry.standing === 'worse' ? whyItLost(entry.config, scenario) : '',
  ]
    .filter(Boolean)
    .join(', ');
}
