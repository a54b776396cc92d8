import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable } from '../../src/cli/table.ts';

const head = ['#', 'configuration', 'rps (median)', 'notes'];
const rows = [
  ['1', 'workers, depth 16, no-delay', '104.2k', 'best'],
  ['2', 'loop (default)', '98.1k', ''],
];

test('a table that fits (or is piped: no width) is boxed; one too wide for the terminal becomes blocks that fit', () => {
  const boxed = renderTable(head, rows);
  const width = Math.max(...boxed.split('\n').map((line) => line.length));
  assert.match(boxed, /^┌─/);
  assert.equal(renderTable(head, rows, width), boxed);
  const compact = renderTable(head, rows, width - 1);
  assert.doesNotMatch(compact, /[┌│]/);
  assert.deepEqual(compact.split('\n\n')[0]!.split('\n'), [
    '#              1',
    'configuration  workers, depth 16, no-delay',
    'rps (median)   104.2k',
    'notes          best',
  ]);
  // An empty cell is left out, not shown as a blank line.
  assert.equal(compact.split('\n\n')[1]!.split('\n').length, 3);
  for (const line of compact.split('\n')) assert.ok(line.length <= width - 1, line);
});
