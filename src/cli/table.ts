/**
 * A boxed table in the style of cli-table3 (autocannon's output), sized to its contents. Given the
 * terminal's width (`columns`) and too wide for it, each row becomes a block of `heading  value`
 * lines instead, so nothing wraps mid-row; piped output (no `columns`) is always the full table.
 */
export function renderTable(head: string[], rows: string[][], columns?: number): string {
  const widths = head.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const tableWidth = widths.reduce((sum, width) => sum + width + 3, 1);
  if (columns !== undefined && tableWidth > columns) return renderBlocks(head, rows);
  const line = (left: string, middle: string, right: string): string => left + widths.map((w) => '─'.repeat(w + 2)).join(middle) + right;
  const row = (cells: string[]): string => '│' + widths.map((w, i) => ` ${(cells[i] ?? '').padEnd(w)} `).join('│') + '│';
  return [line('┌', '┬', '┐'), row(head), line('├', '┼', '┤'), ...rows.map(row), line('└', '┴', '┘')].join('\n');
}

/** The compact layout: one block per row, a heading and its value per line, empty cells left out. */
function renderBlocks(head: string[], rows: string[][]): string {
  const labelWidth = Math.max(...head.map((cell) => cell.length));
  return rows
    .map((row) =>
      head
        .map((heading, column) => [heading || '·', row[column] ?? ''] as const)
        .filter(([, value]) => value !== '')
        .map(([heading, value]) => `${heading.padEnd(labelWidth)}  ${value}`)
        .join('\n'),
    )
    .join('\n\n');
}
