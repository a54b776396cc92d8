/**
 * A boxed table in the style of cli-table3 (autocannon's output), sized to its contents. Given the
 * terminal's width (`columns`) and too wide for it, the table loses its box (two spaces between
 * columns), and any line still too wide is cut with an ellipsis: a row is never wrapped or spread
 * over lines. Piped output (no `columns`) is always the whole boxed table.
 */
export function renderTable(head: string[], rows: string[][], columns?: number): string {
  const widths = head.map((cell, column) => Math.max(width(cell), ...rows.map((row) => width(row[column] ?? ''))));
  const boxedWidth = widths.reduce((sum, cellWidth) => sum + cellWidth + 3, 1);
  if (columns === undefined || boxedWidth <= columns) {
    const line = (left: string, middle: string, right: string): string => left + widths.map((w) => '─'.repeat(w + 2)).join(middle) + right;
    const row = (cells: string[]): string => '│' + widths.map((w, i) => ` ${pad(cells[i] ?? '', w)} `).join('│') + '│';
    return [line('┌', '┬', '┐'), row(head), line('├', '┼', '┤'), ...rows.map(row), line('└', '┴', '┘')].join('\n');
  }
  const row = (cells: string[]): string =>
    widths
      .map((w, i) => pad(cells[i] ?? '', w))
      .join('  ')
      .trimEnd();
  return [row(head), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(row)].map((line) => fitLine(line, columns)).join('\n');
}

/** Characters as a terminal shows them (no wide or combining ones in socktune's tables). */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, cellWidth: number): string {
  return text + ' '.repeat(Math.max(0, cellWidth - width(text)));
}

/** A line cut to the terminal's width, an ellipsis marking the cut; the whole line when it fits or the width is unknown. */
export function fitLine(line: string, columns: number | undefined): string {
  if (columns === undefined || width(line) <= columns) return line;
  return `${[...line].slice(0, Math.max(0, columns - 1)).join('')}…`;
}
