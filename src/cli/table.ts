/** A boxed table in the style of cli-table3 (autocannon's output), sized to its contents. */
export function renderTable(head: string[], rows: string[][]): string {
  const widths = head.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (left: string, middle: string, right: string): string => left + widths.map((w) => '─'.repeat(w + 2)).join(middle) + right;
  const row = (cells: string[]): string => '│' + widths.map((w, i) => ` ${(cells[i] ?? '').padEnd(w)} `).join('│') + '│';
  return [line('┌', '┬', '┐'), row(head), line('├', '┼', '┤'), ...rows.map(row), line('└', '┴', '┘')].join('\n');
}
