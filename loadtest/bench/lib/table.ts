/** A plain-text table: the first column left-aligned, figures right-aligned. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/**
 * The same as a Markdown table, figures right-aligned; `|` in a cell is escaped. The first
 * `labelColumns` columns (default 1) are labels, left-aligned.
 */
export function formatMarkdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  labelColumns = 1,
): string {
  const cell = (text: string): string => text.replaceAll('|', '\\|')
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`
  const rule = `| ${header.map((_, i) => (i < labelColumns ? '---' : '---:')).join(' | ')} |`
  return [line(header), rule, ...rows.map(line)].join('\n')
}
