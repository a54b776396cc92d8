/**
 * Runs the reliability suite (limits and abuse, faults, fuzzing, leaks, soak) with the soak at 60 s,
 * and writes docs/reliability.md: every scenario with its outcome and the figures the tests
 * measured (their diagnostics).
 *
 *   npm run reliability [-- --soak-seconds 60]
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { limitsTable } from './limits.ts';
import { collectEnvironment } from '../src/bench/results/environment.ts';

const { values } = parseArgs({ options: { 'soak-seconds': { type: 'string', default: '60' } } });

/** The suite, by section of the report. */
const SECTIONS: { title: string; files: string[] }[] = [
  {
    title: 'Limits and abuse',
    files: [
      'test/cli/auth-limits.test.ts',
      'test/cli/server-modes.test.ts',
      'test/reliability/hostile-control.test.ts',
      'test/reliability/open-files.test.ts',
      'test/protocols/iperf3-hostile.test.ts',
      'test/protocols/iperf3-auth.test.ts',
      'test/transport/max-connections.test.ts',
      'test/transport/idle-timeout.test.ts',
      'test/transport/allowed-peers.test.ts',
      'test/transport/connection-token.test.ts',
      'test/transport/send-budget.test.ts',
      'test/transport/thread-shares.test.ts',
    ],
  },
  {
    title: 'Faults: resets, half-closes, vanishing peers, crashes, slow consumers, shutdown under load',
    files: [
      'test/reliability/control-faults.test.ts',
      'test/reliability/graceful-close.test.ts',
      'test/reliability/slow-consumer.test.ts',
      'test/cli/faults.test.ts',
      'test/transport/threads.test.ts',
      'test/transport/messages.test.ts',
    ],
  },
  { title: 'Leaks', files: ['test/reliability/leaks.test.ts'] },
  {
    title: 'Fuzzing: parsers',
    files: [
      'test/framing/length-prefix.test.ts',
      'test/framing/json-lines.test.ts',
      'test/protocols/sockperf-codec.test.ts',
      'test/protocols/iperf3-codec.test.ts',
      'test/bench/control-protocol.test.ts',
    ],
  },
  { title: 'Fuzzing: the network', files: ['test/reliability/network-fuzz.test.ts'] },
  { title: 'Soak', files: ['test/reliability/soak.test.ts'] },
];

interface Row {
  name: string;
  ok: boolean;
  skipped: boolean;
  durationMs: number;
  figures: string[];
}

const SUMMARY_LINE = /^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

/** Reads node's TAP: a test's diagnostics follow its ok / not ok line and YAML block, at its indentation; suites are left out. */
function parseTap(tap: string): Row[] {
  const rows: Row[] = [];
  const lastAt = new Map<number, Row>();
  const lines = tap.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const indent = line.length - line.trimStart().length;
    const text = line.trim();
    const result = /^(not ok|ok) \d+ - (.*?)( # SKIP.*)?$/.exec(text);
    if (result) {
      const yaml = lines.slice(i + 1, i + 6).join('\n');
      const row: Row = {
        name: result[2]!,
        ok: result[1] === 'ok',
        skipped: result[3] !== undefined,
        durationMs: Number(/duration_ms: ([\d.]+)/.exec(yaml)?.[1] ?? 0),
        figures: [],
      };
      if (/type: 'suite'/.test(yaml)) lastAt.delete(indent);
      else {
        rows.push(row);
        lastAt.set(indent, row);
      }
    } else if (text.startsWith('# Subtest:')) lastAt.delete(indent);
    else if (text.startsWith('# ') && !SUMMARY_LINE.test(text)) lastAt.get(indent)?.figures.push(text.slice(2));
  }
  return rows;
}

function runSection(files: string[]): Promise<{ tap: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', '--test-concurrency=1', '--test-timeout=300000', ...files], {
      env: { ...process.env, SOCKTUNE_SOAK_SECONDS: values['soak-seconds'] },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let tap = '';
    child.stdout.on('data', (chunk: Buffer) => (tap += chunk.toString()));
    child.on('close', (code) => resolve({ tap, code }));
  });
}

const escape = (text: string): string => text.replaceAll('|', '\\|');
const sections: string[] = [];
let failures = 0;
let total = 0;
for (const section of SECTIONS) {
  process.stderr.write(`${section.title}...\n`);
  const { tap } = await runSection(section.files);
  const rows = parseTap(tap).filter((row) => !/^test\/|\.test\.ts$/.test(row.name));
  total += rows.length;
  failures += rows.filter((row) => !row.ok).length;
  sections.push(
    `## ${section.title}\n\n${section.files.map((file) => `\`${file}\``).join(', ')}\n\n| scenario | result | time | measured |\n|---|---|---|---|\n${rows
      .map(
        (row) =>
          `| ${escape(row.name)} | ${row.skipped ? 'skipped' : row.ok ? 'pass' : '**FAIL**'} | ${(row.durationMs / 1000).toFixed(1)} s | ${escape(row.figures.join('; '))} |`,
      )
      .join('\n')}\n`,
  );
}

const environment = collectEnvironment();
const markdown = `# Reliability

Generated by \`npm run reliability\` on ${new Date().toISOString().slice(0, 10)} (Node ${environment.node}, kernel ${environment.kernel},
${environment.cpus} × ${environment.cpuModel}), with the soak at ${values['soak-seconds']} s: ${total - failures} of ${total} scenarios passed.
The same tests run in \`npm test\` (the soak for 8 s there); this page is their measured figures.

What each server mode does by default, how to change it, and what a client sees over each cap:

${limitsTable()}
What no cap removes: every cap is finite, so an attacker with many addresses can still fill one
(per-address caps and thread-per-conn shares, IPv6 /64 grouping, oldest-first eviction of handshakes and pending iperf3
connections, and the pool's reserve for small tests raise the price, they cannot remove it); clients
behind one address share its per-address caps; iperf3 \`-R\` tests whose client never reads pin kernel
socket memory up to \`--max-total-streams\` × the effective send buffer; the process keeps memory it
freed after large message bursts (the allocator's, not a leak: the soak's RSS is flat).

${sections.join('\n')}`;
writeFileSync(new URL('../docs/reliability.md', import.meta.url), markdown);
process.stdout.write(markdown);
process.exitCode = failures > 0 ? 1 : 0;
