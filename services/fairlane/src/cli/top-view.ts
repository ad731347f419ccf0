/** One node's answer to GET /lanes (docs/operations.md#get-lanes). */
export interface NodeLanes {
  readonly node: string
  readonly region: string | null
  readonly windowSeconds: number
  readonly waitBucketsMs: readonly number[]
  readonly refusalCodes: readonly string[]
  readonly lanes: readonly {
    readonly workspace: string
    readonly caller: string
    readonly target: string
    readonly tier: string
    readonly queued: number
    readonly admitted: number
    readonly refused: Readonly<Record<string, number>>
    readonly wait: readonly number[]
  }[]
}

/** A lane, or a workspace with `--by workspace`, summed over the nodes that saw it. */
export interface TopRow {
  readonly workspace: string
  /** The caller (key id, customer or caller id); '' for a workspace row. */
  readonly caller: string
  readonly target: string
  /** With `--by workspace`, the tiers of its lanes joined by `+` when they differ. */
  tier: string
  admittedPerSecond: number
  queued: number
  refusedPerSecond: number
  readonly refused: Record<string, number>
  readonly wait: number[]
}

export type TopGrouping = 'lane' | 'workspace'

/**
 * Sums the nodes' lanes: rates per node over each node's own window, then added; queued and
 * waits added as they are (a lane's requests wait at the ingress node they came in by, so
 * the nodes' counts never overlap).
 */
export function mergeLanes(nodes: readonly NodeLanes[], by: TopGrouping): TopRow[] {
  const rows = new Map<string, TopRow>()
  for (const node of nodes) {
    const seconds = Math.max(node.windowSeconds, 0.001)
    for (const lane of node.lanes) {
      const caller = by === 'lane' ? lane.caller : ''
      const target = by === 'lane' ? lane.target : ''
      const id = JSON.stringify([lane.workspace, caller, target])
      let row = rows.get(id)
      if (!row) {
        row = {
          workspace: lane.workspace,
          caller,
          target,
          tier: lane.tier,
          admittedPerSecond: 0,
          queued: 0,
          refusedPerSecond: 0,
          refused: {},
          wait: new Array<number>(node.waitBucketsMs.length + 1).fill(0),
        }
        rows.set(id, row)
      } else if (row.tier !== lane.tier) {
        row.tier = mixedTier(row.tier, lane.tier)
      }
      row.admittedPerSecond += lane.admitted / seconds
      row.queued += lane.queued
      for (const [code, count] of Object.entries(lane.refused)) {
        row.refused[code] = (row.refused[code] ?? 0) + count
        row.refusedPerSecond += count / seconds
      }
      lane.wait.forEach((count, i) => (row.wait[i] = (row.wait[i] ?? 0) + count))
    }
  }
  return [...rows.values()].sort(
    (a, b) =>
      b.admittedPerSecond +
        b.refusedPerSecond +
        b.queued -
        (a.admittedPerSecond + a.refusedPerSecond + a.queued) ||
      a.workspace.localeCompare(b.workspace) ||
      a.caller.localeCompare(b.caller),
  )
}

function mixedTier(a: string, b: string): string {
  const tiers = new Set([...a.split('+'), b])
  return [...tiers].sort().join('+')
}

/** The bound of the bucket holding the 99th percentile, in ms; Infinity above the last. */
export function p99Ms(wait: readonly number[], boundsMs: readonly number[]): number | undefined {
  const total = wait.reduce((sum, n) => sum + n, 0)
  if (total === 0) return undefined
  let seen = 0
  for (let i = 0; i < wait.length; i++) {
    seen += wait[i] ?? 0
    if (seen >= 0.99 * total) return boundsMs[i] ?? Infinity
  }
  return Infinity
}

function waitText(ms: number | undefined, boundsMs: readonly number[]): string {
  if (ms === undefined) return '-'
  if (ms === Infinity) return `>${secondsOrMs(boundsMs[boundsMs.length - 1] ?? 0)}`
  return `≤${secondsOrMs(ms)}`
}

function secondsOrMs(ms: number): string {
  return ms >= 1_000 ? `${ms / 1_000}s` : `${ms}ms`
}

function rate(perSecond: number): string {
  return perSecond === 0 ? '0' : perSecond < 10 ? perSecond.toFixed(1) : perSecond.toFixed(0)
}

export interface TopScreen {
  readonly nodes: readonly NodeLanes[]
  /** Admin URLs that did not answer, with why. */
  readonly unreachable: readonly { readonly url: string; readonly reason: string }[]
  readonly by: TopGrouping
  readonly limit: number
  readonly at: Date
}

/** The screen `fairlane top` prints: a header, then one line per row, busiest first. */
export function renderTop(screen: TopScreen): string {
  const rows = mergeLanes(screen.nodes, screen.by).slice(0, screen.limit)
  const bounds = screen.nodes[0]?.waitBucketsMs ?? []
  const window = Math.max(0, ...screen.nodes.map((n) => n.windowSeconds))
  const names = screen.nodes.map((n) => n.node).join(', ')
  const lines = [
    `fairlane top  ${screen.at.toISOString()}  ${screen.nodes.length} node${screen.nodes.length === 1 ? '' : 's'}${names ? ` (${names})` : ''}  last ${window.toFixed(1)} s  by ${screen.by}`,
    ...screen.unreachable.map((u) => `  ${u.url}: not answering (${u.reason})`),
    '',
  ]
  const header = [
    'WORKSPACE',
    ...(screen.by === 'lane' ? ['CALLER', 'TARGET'] : []),
    'TIER',
    'ADMITTED/S',
    'QUEUED',
    'P99 WAIT',
    'REFUSED/S',
    'REFUSALS',
  ]
  const table = rows.map((row) => [
    row.workspace,
    ...(screen.by === 'lane' ? [row.caller, row.target] : []),
    row.tier,
    rate(row.admittedPerSecond),
    String(row.queued),
    waitText(p99Ms(row.wait, bounds), bounds),
    rate(row.refusedPerSecond),
    Object.entries(row.refused)
      .map(([code, count]) => `${code} ${count}`)
      .join(', '),
  ])
  // Numbers right-aligned, names left-aligned; the last column as wide as it is.
  const numeric = new Set(['ADMITTED/S', 'QUEUED', 'P99 WAIT', 'REFUSED/S'])
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        if (i === cells.length - 1) return cell
        const width = widths[i] ?? 0
        return numeric.has(header[i] ?? '') ? cell.padStart(width) : cell.padEnd(width)
      })
      .join('  ')
      .trimEnd()
  lines.push(line(header))
  for (const row of table) lines.push(line(row))
  if (table.length === 0) lines.push('(no lane had a request in the window)')
  return lines.join('\n')
}
