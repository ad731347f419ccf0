/**
 * Horizontal bar charts as hand-written SVG: one file per scenario, a panel per figure, a row
 * per system, a bar per series. No chart library: the output is plain text that diffs, opens
 * in any browser and needs nothing installed.
 */

interface ChartRow {
  readonly label: string
  /** One value per series, in the panel's series order; NaN draws no bar and says "n/a". */
  readonly values: readonly number[]
  /** Drawn in bold: the row the reader looks for (Fairlane). */
  readonly highlight?: boolean
}

interface ChartPanel {
  readonly title: string
  /** The axis unit, e.g. "req/s" or "ms". */
  readonly unit: string
  readonly series: readonly string[]
  readonly rows: readonly ChartRow[]
  /** A vertical line at a value the bars are read against (the configured limit). */
  readonly reference?: { readonly value: number; readonly label: string }
  /** How a value is printed beside its bar. */
  readonly format?: (value: number) => string
  /** The axis ends here even when no bar reaches it (Jain's index: 1). */
  readonly axisMax?: number
}

export interface Chart {
  readonly title: string
  /** Lines under the title: the settings and the machine the figures came from. */
  readonly subtitle: readonly string[]
  readonly panels: readonly ChartPanel[]
  /** Lines at the bottom: systems that did not run, and why. */
  readonly footer?: readonly string[]
}

const WIDTH = 900
const LABEL_WIDTH = 250
const VALUE_WIDTH = 90
const PLOT_WIDTH = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20
const BAR_HEIGHT = 14
const ROW_GAP = 10
const LINE = 16
const COLOURS = ['#2f6db5', '#e08a2c', '#5a9e4b', '#b5463c', '#7d5ba6']
const HIGHLIGHT_COLOURS = ['#0b3d7a', '#a65300', '#2d6b22', '#7d1d15', '#4b2a75']

/** About what fits in the chart's width at 12 px: SVG text does not wrap by itself. */
const FOOTER_CHARS = 135

function wrap(line: string, width: number): string[] {
  const lines: string[] = []
  let current = ''
  for (const word of line.split(' ')) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current)
      current = '    ' + word
    } else {
      current = current ? `${current} ${word}` : word
    }
  }
  if (current) lines.push(current)
  return lines
}

const escape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attributes ? ' ' + attributes : ''}>${escape(content)}</text>`
}

/** 1, 2 or 5 times a power of ten, so that about five ticks cover the range. */
function tickStep(max: number): number {
  const rough = max / 5
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  for (const m of [1, 2, 5, 10]) if (m * magnitude >= rough) return m * magnitude
  return 10 * magnitude
}

function defaultFormat(value: number): string {
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US')
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

function panelSvg(panel: ChartPanel, top: number): { svg: string; height: number } {
  const format = panel.format ?? defaultFormat
  const finite = panel.rows.flatMap((r) => r.values.filter((v) => Number.isFinite(v)))
  const max = panel.axisMax ?? (Math.max(...finite, panel.reference?.value ?? 0, 0) * 1.05 || 1)
  const step = tickStep(max)
  const end = Math.ceil(max / step - 1e-9) * step
  const tickDigits = Math.max(0, -Math.floor(Math.log10(step)))
  const tickLabel = (tick: number): string =>
    tick.toLocaleString('en-US', {
      minimumFractionDigits: tickDigits,
      maximumFractionDigits: tickDigits,
    })
  const x = (value: number): number => LABEL_WIDTH + (Math.max(0, value) / end) * PLOT_WIDTH
  const parts: string[] = []
  let y = top
  parts.push(text(10, y + 13, panel.title, 'font-weight="bold" font-size="14"'))
  y += LINE + 6
  if (panel.series.length > 1) {
    let lx = LABEL_WIDTH
    for (const [i, name] of panel.series.entries()) {
      parts.push(
        `<rect x="${lx}" y="${y}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`,
      )
      parts.push(text(lx + 16, y + 10, name))
      lx += 24 + name.length * 7
    }
    y += LINE + 4
  }
  // The reference line's label sits above the bars, on a line of its own.
  if (panel.reference) y += LINE
  const plotTop = y
  for (const row of panel.rows) {
    const rowHeight = panel.series.length * BAR_HEIGHT
    parts.push(
      text(
        LABEL_WIDTH - 8,
        y + rowHeight / 2 + 4,
        row.label,
        `text-anchor="end"${row.highlight ? ' font-weight="bold"' : ''}`,
      ),
    )
    for (const [i, value] of row.values.entries()) {
      const by = y + i * BAR_HEIGHT
      const palette = row.highlight ? HIGHLIGHT_COLOURS : COLOURS
      if (Number.isFinite(value)) {
        const width = Math.max(1, x(value) - LABEL_WIDTH)
        parts.push(
          `<rect x="${LABEL_WIDTH}" y="${by + 1}" width="${width.toFixed(1)}" height="${BAR_HEIGHT - 2}" fill="${palette[i % palette.length]}"/>`,
        )
        parts.push(text(LABEL_WIDTH + width + 4, by + BAR_HEIGHT - 3, format(value)))
      } else {
        parts.push(text(LABEL_WIDTH + 4, by + BAR_HEIGHT - 3, 'n/a', 'fill="#777"'))
      }
    }
    y += rowHeight + ROW_GAP
  }
  const plotBottom = y - ROW_GAP / 2
  parts.push(
    `<line x1="${LABEL_WIDTH}" y1="${plotTop - 2}" x2="${LABEL_WIDTH}" y2="${plotBottom}" stroke="#333"/>`,
  )
  for (let tick = 0; tick <= end + step / 2; tick += step) {
    const tx = x(tick)
    parts.push(
      `<line x1="${tx.toFixed(1)}" y1="${plotBottom}" x2="${tx.toFixed(1)}" y2="${plotBottom + 4}" stroke="#333"/>`,
    )
    parts.push(text(tx, plotBottom + 16, tickLabel(tick), 'text-anchor="middle" fill="#555"'))
  }
  parts.push(
    text(LABEL_WIDTH + PLOT_WIDTH / 2, plotBottom + 32, panel.unit, 'text-anchor="middle"'),
  )
  if (panel.reference) {
    const rx = x(panel.reference.value)
    parts.push(
      `<line x1="${rx.toFixed(1)}" y1="${plotTop - 4}" x2="${rx.toFixed(1)}" y2="${plotBottom}" stroke="#c00" stroke-dasharray="4 3"/>`,
    )
    parts.push(text(rx + 4, plotTop - 6, panel.reference.label, 'fill="#c00"'))
  }
  return { svg: parts.join('\n'), height: plotBottom + 44 - top }
}

export function chartSvg(chart: Chart): string {
  const parts: string[] = []
  let y = 10
  parts.push(text(10, y + 16, chart.title, 'font-weight="bold" font-size="17"'))
  y += 26
  for (const line of chart.subtitle) {
    parts.push(text(10, y + 12, line, 'fill="#555"'))
    y += LINE
  }
  y += 10
  for (const panel of chart.panels) {
    const drawn = panelSvg(panel, y)
    parts.push(drawn.svg)
    y += drawn.height + 14
  }
  for (const line of (chart.footer ?? []).flatMap((l) => wrap(l, FOOTER_CHARS))) {
    parts.push(text(10, y + 12, line, 'fill="#555"'))
    y += LINE
  }
  const height = Math.ceil(y + 10)
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`
  )
}
