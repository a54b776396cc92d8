import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as socktune from '../../src/index.ts';

test('every value docs/library.md lists under "What the package exports" is exported, and every export is listed', () => {
  const text = readFileSync(new URL('../../docs/library.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('## What the package exports'), text.indexOf('\nTypes:'));
  const documented = new Set(
    [...section.matchAll(/^\| (.+?) \|/gm)].flatMap(([, cell]) => [...cell!.matchAll(/`(\w+)`/g)].map(([, name]) => name!)),
  );
  documented.delete('export');
  for (const name of documented) assert.ok(name in socktune, `${name} is documented but not exported`);
  for (const name of Object.keys(socktune)) assert.ok(documented.has(name), `${name} is exported but not in docs/library.md`);
});
