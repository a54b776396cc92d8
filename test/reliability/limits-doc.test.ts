import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { limitsTable } from '../../scripts/limits.ts';

test('docs/reliability.md lists every cap with the defaults the code uses (regenerate with npm run reliability)', async () => {
  const doc = await readFile(new URL('../../docs/reliability.md', import.meta.url), 'utf8');
  assert.ok(doc.includes(limitsTable()), 'the limits table in docs/reliability.md is not the one scripts/limits.ts renders from the code');
});
