import type { MergeableResult, MergeSource } from '../bench/results/merge.ts';
import { validateResult } from '../bench/results/result-schema.ts';
import { SocktuneError } from '../core/errors.ts';

/**
 * The results of a test's client pods, read from their logs. Every client prints `--ndjson`: one
 * line per interval, then its result as one JSON line, the last of its log. Logs come as
 * `kubectl logs -l ... --prefix` prints them (each line led by `[pod/NAME/CONTAINER] `), or one file
 * per pod; a log that ends with a pretty-printed `--json` document is read too.
 */

export interface PodLog {
  /** The pod's name from the prefix, or where the log came from (a file name). */
  pod: string;
  lines: string[];
}

/** `[pod/NAME/CONTAINER] text`, as `kubectl logs --prefix` leads every line. */
// Pod names are DNS labels (lowercase letters, digits, dots, dashes): anything else is not kubectl's prefix.
const PREFIX = /^\[pod\/([a-z0-9.-]+)\/[^\]\s]+\] ?(.*)$/;
/** A pod of an Indexed Job: `<job>-<index>-<random>`. */
const INDEXED_POD = /^(.+)-(\d+)-[a-z0-9]{5}$/;
/** How much of a line an error message quotes. */
const QUOTE_CHARS = 300;

/**
 * Splits one input into the logs of its pods: by the `--prefix` of its lines, or, when its first line
 * has none, the whole input is the log of one pod named `source`; an empty input, none. A line without a prefix in prefixed
 * output continues the pod before it.
 */
export function splitPodLogs(text: string, source: string): PodLog[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const first = lines.find((line) => line.trim() !== '');
  if (first === undefined) return [];
  if (!PREFIX.test(first)) return [{ pod: source, lines }];
  const byPod = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const match = PREFIX.exec(line);
    if (match) {
      const pod = match[1]!;
      current = byPod.get(pod) ?? [];
      byPod.set(pod, current);
      current.push(match[2]!);
    } else current?.push(line);
  }
  return [...byPod.entries()].map(([pod, podLines]) => ({ pod, lines: podLines }));
}

/** The JSON object `text` holds (undefined for other JSON), or why it is not JSON. */
function parseObject(text: string): { object: Record<string, unknown> | undefined } | { notJson: string } {
  try {
    const value: unknown = JSON.parse(text);
    return {
      object: typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined,
    };
  } catch (error) {
    return { notJson: (error as Error).message };
  }
}

/** A line as an error message quotes it. */
function quoteLine(line: string): string {
  return JSON.stringify(line.length > QUOTE_CHARS ? `${line.slice(0, QUOTE_CHARS)}…` : line);
}

/** An --ndjson result line carries `type: 'result'`; the document is the rest. Interval lines are not results. */
function asDocument(value: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (value === undefined || value.type === 'interval') return undefined;
  if (value.type === 'result') {
    const { type: _type, ...rest } = value;
    return rest;
  }
  return typeof value.schema === 'string' ? value : undefined;
}

/** The result document of one pod's log, or why there is none (its last line: the client's error). */
export function resultOfPod(log: PodLog): { result: MergeableResult } | { missing: string } {
  let document: Record<string, unknown> | undefined;
  // The last JSON line that does not parse: a result line cut short, when no result comes before it.
  let broken: { line: string; why: string } | undefined;
  for (let i = log.lines.length - 1; i >= 0 && document === undefined; i--) {
    const line = log.lines[i]!.trim();
    if (!line.startsWith('{')) continue;
    const parsed = parseObject(line);
    if ('object' in parsed) document = asDocument(parsed.object);
    else if (line.startsWith('{"')) broken ??= { line, why: parsed.notJson };
  }
  if (document === undefined) {
    // A pretty-printed --json document: from a lone `{` to the last lone `}` after it.
    const end = log.lines.findLastIndex((line) => line === '}');
    const start = log.lines.findLastIndex((line, index) => line === '{' && index < end);
    const parsed = start >= 0 ? parseObject(log.lines.slice(start, end + 1).join('\n')) : undefined;
    if (parsed !== undefined && 'object' in parsed) document = asDocument(parsed.object);
  }
  if (document === undefined) {
    const last = log.lines.findLast((line) => line.trim() !== '')?.trim();
    if (last === undefined) return { missing: 'its log is empty' };
    if (broken !== undefined)
      return { missing: `no result line; its last JSON line does not parse (${broken.why}; cut short?): ${quoteLine(broken.line)}` };
    return { missing: `no result line; its log ends with ${quoteLine(last)}` };
  }
  validateResult(document, `pod ${log.pod}`);
  return { result: document as unknown as MergeableResult };
}

/** Orders pods by their completion index when they have one, else by name. */
function byIndex(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export interface CollectOptions {
  /** The number of client pods the test ran (`--clients`): fewer or more logs are refused. */
  expect?: number;
}

/**
 * The merge sources of a test, one per pod, labelled by pod name. Refuses (SOCKTUNE_ERR_MERGE) a pod
 * without a result, two pods of one completion index, runs that waited for different `--start-at`
 * times (logs of different tests), and a count other than `expect`: a merge of fewer clients than ran
 * would report a smaller load than the servers carried.
 */
export function collectSources(logs: readonly PodLog[], options: CollectOptions = {}): MergeSource[] {
  const seen = new Map<string, PodLog>();
  for (const log of logs) {
    if (seen.has(log.pod)) throw new SocktuneError('SOCKTUNE_ERR_MERGE', `the log of pod ${log.pod} was given twice`);
    seen.set(log.pod, log);
  }
  const pods = [...seen.values()].sort((a, b) => byIndex(a.pod, b.pod));
  if (pods.length === 0)
    throw new SocktuneError(
      'SOCKTUNE_ERR_MERGE',
      'no pod log was given: pipe `kubectl logs -l job-name=JOB --prefix --tail=-1` in, or name the files',
    );
  if (options.expect !== undefined && pods.length !== options.expect) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_MERGE',
      `expected the logs of ${options.expect} client pod(s), found ` +
        `${pods.length}${pods.length > 0 ? ` (${pods.map((log) => log.pod).join(', ')})` : ''}: a ` +
        'pod that never started has no log; see kubectl get pods -l socktune.io/test=ID',
    );
  }
  const indexes = new Map<string, string>();
  for (const { pod } of pods) {
    const match = INDEXED_POD.exec(pod);
    if (!match) continue;
    const key = `${match[1]}-${match[2]}`;
    const other = indexes.get(key);
    if (other !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_MERGE', `pods ${other} and ${pod} ran the same completion index: merge one run of each`);
    indexes.set(key, pod);
  }
  const sources: MergeSource[] = [];
  const missing: string[] = [];
  for (const log of pods) {
    const found = resultOfPod(log);
    if ('missing' in found) missing.push(`${log.pod}: ${found.missing}`);
    else sources.push({ label: log.pod, result: found.result });
  }
  if (missing.length > 0) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_MERGE',
      `${missing.length} of ${pods.length} client pod(s) have no result, so the merge would ` +
        `leave their load out:\n  ${missing.join('\n  ')}`,
    );
  }
  const starts = new Set(sources.map(({ result }) => (result as { startAt?: number }).startAt));
  if (starts.size > 1) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_MERGE',
      'the results started at different times (a barrier release or --start-at: ' +
        `${[...starts].map((start) => (start === undefined ? 'none' : new Date(start).toISOString())).join(', ')}): ` +
        'logs of different tests; collect one test at a time',
    );
  }
  return sources;
}

/** One server of a test and how many client pods reached it. */
export interface ServerShare {
  /** The `-c` the clients reached, as their results record it: `HOST:PORT` (a Service's name through a ClusterIP). */
  server: string;
  clients: number;
}

/** The clients of each server, in the servers' order (`server-0`, `server-1`, ..., numbers compared as numbers). */
export function serverShares(sources: readonly MergeSource[]): ServerShare[] {
  const counts = new Map<string, number>();
  for (const { result } of sources) {
    const { host, port, path } = result.options.target;
    const server = path ?? `${host.includes(':') ? `[${host}]` : host}:${port}`;
    counts.set(server, (counts.get(server) ?? 0) + 1);
  }
  return [...counts.entries()].sort(([a], [b]) => byIndex(a, b)).map(([server, clients]) => ({ server, clients }));
}
