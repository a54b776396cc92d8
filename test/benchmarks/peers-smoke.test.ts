import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../testkit/helpers.ts';

interface PeersJson {
  smoke: boolean;
  missing: string[];
  results: { workload: string; server: string; rps: number[]; p99Us: number[] }[];
  memory: { server: string; connections: number; rssBytesPerConnection: number }[];
}

test('bench:peers plumbing: one tiny workload against the installed peers writes well-formed results', { timeout: 240_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'socktune-peers-test-'));
  await run(process.execPath, [new URL('../../bench/peers/run.ts', import.meta.url).pathname, '--smoke', '--out', out], {
    timeout: 230_000,
  });
  const files = readdirSync(out).sort();
  assert.equal(files.length, 2, files.join(', '));
  const [jsonFile, markdownFile] = files as [string, string];
  assert.match(jsonFile, /^peers-\d{4}-\d{2}-\d{2}\.json$/);
  assert.match(markdownFile, /^peers-\d{4}-\d{2}-\d{2}\.md$/);
  const document = JSON.parse(readFileSync(join(out, jsonFile), 'utf8')) as PeersJson;
  assert.equal(document.smoke, true);
  const servers = document.results.map((row) => row.server);
  for (const required of [
    'socktune loop',
    'socktune workers',
    'socktune thread-per-conn',
    'socktune thread-per-conn blocking',
    'node:net (write per chunk)',
  ]) {
    assert.ok(servers.includes(required), `${required} is in the results`);
  }
  assert.ok(document.results.every((row) => row.rps.length === 1 && row.rps[0]! > 0 && row.p99Us[0]! > 0));
  assert.deepEqual(
    document.memory.map((row) => row.server),
    servers,
  );
  const markdown = readFileSync(join(out, markdownFile), 'utf8');
  assert.match(markdown, /\| server \| req\/s \| range \| p99 \| vs node:net \| vs Go \| client saturated \|/);
  assert.match(markdown, /## Memory per idle connection/);
  for (const peer of document.missing) assert.match(markdown, new RegExp(peer.replace(/[()+]/g, '\\$&')));
});
