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
      'test/bench/servers/iperf3/hostile-clients.test.ts',
      'test/bench/servers/iperf3/authenticator.test.ts',
      'test/transport/server/max-connections.test.ts',
      'test/transport/server/idle-timeout.test.ts',
      'test/transport/server/allowed-peers.test.ts',
      'test/transport/server/connection-token.test.ts',
      'test/transport/io/send-budget.test.ts',
      'test/transport/models/thread-shares.test.ts',
      'test/reliability/hardening.test.ts',
      'test/cli/server-hardening.test.ts',
      'test/cli/secrets.test.ts',
    ],
  },
  {
    title: 'Faults: resets, half-closes, vanishing peers, crashes, slow consumers, shutdown under load',
    files: [
      'test/reliability/control-faults.test.ts',
      'test/reliability/graceful-close.test.ts',
      'test/reliability/slow-consumer.test.ts',
      'test/cli/faults.test.ts',
      'test/transport/models/threads.test.ts',
      'test/transport/messages/message-socket.test.ts',
    ],
  },
  { title: 'Leaks', files: ['test/reliability/leaks.test.ts'] },
  {
    title: 'Fuzzing: parsers',
    files: [
      'test/framing/length-prefix.test.ts',
      'test/framing/json-lines.test.ts',
      'test/protocols/sockperf/codec.test.ts',
      'test/protocols/iperf3/codec.test.ts',
      'test/bench/control/control-protocol.test.ts',
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

const THREAT_MODEL = `## Threat model

**Who.** A socktune server faces whoever can reach its port: on a shared network, a stranger. The
server assumes that stranger may send anything, at any rate, from many connections and (IPv6) from
many addresses of one prefix; may open connections and say nothing; may start tests and walk away;
may try tokens; and may read what the server and its clients print.

**What the server defends.**
- *Its process*: nothing a client sends ends the server. Every input is checked before use (control
  messages, iperf3 parameters, sockperf and length-prefixed frames, each with its size limit before
  any allocation); a handler's exception closes that connection only; a log reader that goes away or
  stalls costs the server no memory and no crash.
- *Its resources, shared fairly*: every connection, test, thread, byte of buffered memory and byte
  sent is capped, server-wide and per client (an IPv4 address, an IPv6 /64 by default), so one client
  cannot take them all; thread-per-conn gives each client a share of the pool while others wait.
- *Its secret*: the control server's auth token is proved by HMAC over a fresh challenge and the
  start message (the token never travels) and is never written: results record \`"auth": true\`, and
  the token is a redacted value in every log, error and report. Failed proofs are slowed, then
  refused per client before any work; iperf3's RSA decryptions are rate-limited the same way.
- *Its operator's intent*: a client asks, the server decides: socket buffers, chunk sizes, threads,
  CPUs (within the server's \`-A\`), duration, full GCs — each bounded by a server flag.

**What it leaves to the kernel and the network.** SYN floods and connection-rate floods
(\`net.ipv4.tcp_syncookies\`, the listen backlog), bandwidth exhaustion of the link, spoofed
addresses (TCP's handshake already refuses them; a spoofing attacker with many addresses still
fills per-address caps), kernel socket memory of \`-R\` streams a client never reads, and TLS:
the control channel is authenticated, not encrypted, so tests and their results can be observed
on the path.

**How to deploy it.**
1. Bind the address clients use, not \`0.0.0.0\` (\`--bind 198.18.0.2\`); the default is \`127.0.0.1\`.
2. Give the token from the environment (\`SOCKTUNE_AUTH_TOKEN\`, a Kubernetes Secret), never on the
   command line, where \`ps\` shows it; 16 characters at least (\`openssl rand -hex 16\`).
3. Let only the load generators reach the control port and the test ports (a firewall or a
   NetworkPolicy); the bare \`service\` and \`sockperf\` modes have no authentication at all.
4. Cap what it may send (\`--max-rate\`) and hold (\`--max-connections\`, \`--max-threads\`) to what
   the host can spare, and pin it (\`-A\`) away from the CPUs of the service it shares a host with.
`;

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
The same tests run in \`npm test\` (the soak for 5 s there); this page is their measured figures.

What each server mode does by default, how to change it, and what a client sees over each cap:

${limitsTable()}
What no cap removes: every cap is finite, so an attacker with many addresses can still fill one
(per-address caps and thread-per-conn shares, IPv6 /64 grouping, oldest-first eviction of handshakes and pending iperf3
connections, and the pool's reserve for small tests raise the price, they cannot remove it); clients
behind one address share its per-address caps; iperf3 \`-R\` tests whose client never reads pin kernel
socket memory up to \`--max-total-streams\` × the effective send buffer; each thread-per-conn thread is a
V8 isolate of about 20 MB, so the default pool of 64 costs about 1.3 GB when held, and four addresses can hold
it (lower \`--max-threads\` on small hosts); with 8 control connections a client out of 16 tests, two addresses fill the test slots until
their tests go idle (lower \`--max-per-client\` on a shared server); the process keeps memory it
freed after large message bursts (the allocator's, not a leak: the soak's RSS is flat).

${THREAT_MODEL}
${sections.join('\n')}`;
writeFileSync(new URL('../docs/reliability.md', import.meta.url), markdown);
process.stdout.write(markdown);
process.exitCode = failures > 0 ? 1 : 0;
