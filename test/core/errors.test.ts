import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { countError, countedErrorOf, ERROR_CODES, SocktuneError, fromSystemError, type ErrorCounts } from '../../src/core/errors.ts';

const root = new URL('../../', import.meta.url);

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => (entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : Promise.resolve([join(dir, entry.name)]))),
  );
  return nested.flat().filter((file) => file.endsWith('.ts'));
}

test('docs/errors.md lists exactly the codes src/core/errors.ts defines', async () => {
  const docs = await readFile(new URL('docs/errors.md', root), 'utf8');
  const documented = new Set(docs.match(/SOCKTUNE_ERR_[A-Z_]+/g));
  assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
});

test('every code used in src/ is a defined code', async () => {
  const used = new Set<string>();
  for (const file of await sourceFiles(new URL('src', root).pathname)) {
    for (const code of (await readFile(file, 'utf8')).match(/SOCKTUNE_ERR_[A-Z_]+/g) ?? []) used.add(code);
  }
  for (const code of used) assert.ok((ERROR_CODES as readonly string[]).includes(code), `${code} is used but not defined`);
});

test('SocktuneError keeps code, errno and cause', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const error = fromSystemError(cause, 'connect to 127.0.0.1:1');
  assert.ok(error instanceof SocktuneError);
  assert.equal(error.code, 'SOCKTUNE_ERR_REFUSED');
  assert.equal(error.errno, 'ECONNREFUSED');
  assert.equal(error.cause, cause);
  assert.match(error.message, /connect to 127\.0\.0\.1:1/);
});

test('error counts are keyed by a closed type: a socktune code, an errno name, or UNKNOWN', () => {
  assert.equal(countedErrorOf(new SocktuneError('SOCKTUNE_ERR_TIMEOUT', 'slow')), 'SOCKTUNE_ERR_TIMEOUT');
  assert.equal(countedErrorOf(new SocktuneError('SOCKTUNE_ERR_PEER_GONE', 'reset', { errno: 'ECONNRESET' })), 'ECONNRESET');
  assert.equal(countedErrorOf(Object.assign(new Error('x'), { code: 'EMFILE' })), 'EMFILE');
  assert.equal(countedErrorOf(Object.assign(new Error('x'), { code: 'ERR_STREAM_DESTROYED' })), 'UNKNOWN');
  assert.equal(countedErrorOf(new TypeError('bug'), 'SOCKTUNE_ERR_HANDLER'), 'SOCKTUNE_ERR_HANDLER');
  const counts: ErrorCounts = {};
  countError(counts, 'EMFILE');
  countError(counts, 'EMFILE', 2);
  assert.deepEqual(counts, { EMFILE: 3 });
});
