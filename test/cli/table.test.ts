import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitLine, renderTable } from '../../src/cli/table.ts';

const head = ['#', 'configuration', 'rps (median)', 'notes'];
const rows = [
  ['1', 'workers, depth 16, no-delay', '104.2k', 'best'],
  ['2', 'loop (default)', '98.1k', ''],
];

test('a table that fits (or is piped: no width) is boxed; one too wide loses its box, one row a line, nothing past the width', () => {
  const boxed = renderTable(head, rows);
  const width = Math.max(...boxed.split('\n').map((line) => line.length));
  assert.match(boxed, /^┌─/);
  assert.equal(renderTable(head, rows, width), boxed);
  const compact = renderTable(head, rows, width - 1);
  assert.doesNotMatch(compact, /[┌│]/);
  assert.deepEqual(compact.split('\n'), [
    '#  configuration                rps (median)  notes',
    '─  ───────────────────────────  ────────────  ─────',
    '1  workers, depth 16, no-delay  104.2k        best',
    '2  loop (default)               98.1k',
  ]);
  const narrow = renderTable(head, rows, 30);
  assert.equal(narrow.split('\n').length, 4, 'a row stays on one line');
  for (const line of narrow.split('\n')) assert.ok([...line].length <= 30, line);
  assert.equal(narrow.split('\n')[2], '1  workers, depth 16, no-dela…');
});

test('fitLine cuts to the width with an ellipsis, and leaves a line that fits or an unknown width alone', () => {
  assert.equal(fitLine('abcdef', 4), 'abc…');
  assert.equal(fitLine('abcdef', 6), 'abcdef');
  assert.equal(fitLine('abcdef', undefined), 'abcdef');
  assert.equal(fitLine('µµµµµ', 3), 'µµ…', 'characters, not bytes');
});
