/**
 * Reads saved `npm run bench` results (loadtest/results/bench-*.json) and counts, for every
 * system, the runs whose open-loop latency stayed within bounds over `direct` in the same
 * run: p50 and p99 at 1000 req/s and at the half rate, the four bounds of issue 12's point 2
 * (docs/performance.md, "Point 2 across runs"). One run on two shared cores says little about
 * a bound this tight; the count over many runs says whether a system reaches it at all.
 *
 *   npm run bench:latency-bounds -- [--p50 0.3] [--p99 1] [--runs] [result.json ...]
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { numberFlag } from './lib/options.ts'
import { RESULTS_DIR } from './lib/paths.ts'
import { formatMarkdownTable } from './lib/table.ts'

/** The part of a saved overhead run this reads. */
interface Window {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly failed: number
  readonly refusedPerSec: number
}

interface SavedRun {
  readonly system: string
  readonly atRate?: Window
  readonly atHalf?: Window
}

interface SavedBench {
  readonly quick?: boolean
  readonly machine?: { readonly git?: { readonly commit?: string } }
  readonly scenarios?: readonly {
    readonly name: string
    readonly results?: { readonly runs?: readonly SavedRun[] }
  }[]
}

/** A system's latency over direct's in one run, ms: p50 and p99 at 1000 req/s and at half. */
export interface Excess {
  readonly system: string
  readonly values: readonly [number, number, number, number]
  /** Refusals or failures in either window: the latencies are of fewer requests than sent. */
  readonly flawed: boolean
}

const COLUMNS = ['p50 @ 1000/s', 'p99 @ 1000/s', 'p50 @ half', 'p99 @ half'] as const

/** Every system's excess over direct in one saved bench; none without both windows of direct. */
export function excessesOf(bench: SavedBench): Excess[] {
  const runs = bench.scenarios?.find((s) => s.name === 'overhead')?.results?.runs ?? []
  const direct = runs.find((r) => r.system === 'direct')
  if (!direct?.atRate || !direct.atHalf) return []
  const { atRate: base, atHalf: baseHalf } = direct
  const out: Excess[] = []
  for (const run of runs) {
    const { atRate, atHalf } = run
    if (run.system === 'direct' || !atRate || !atHalf) continue
    out.push({
      system: run.system,
      values: [
        atRate.p50Ms - base.p50Ms,
        atRate.p99Ms - base.p99Ms,
        atHalf.p50Ms - baseHalf.p50Ms,
        atHalf.p99Ms - baseHalf.p99Ms,
      ],
      flawed: [atRate, atHalf].some((w) => w.failed > 0 || w.refusedPerSec > 0),
    })
  }
  return out
}

/** Per system: runs, and how many met each bound and all four. */
export function tally(
  excesses: readonly Excess[],
  p50BoundMs: number,
  p99BoundMs: number,
): Map<string, { runs: number; met: number[]; all: number }> {
  const bounds = [p50BoundMs, p99BoundMs, p50BoundMs, p99BoundMs]
  const bySystem = new Map<string, { runs: number; met: number[]; all: number }>()
  for (const { system, values } of excesses) {
    let entry = bySystem.get(system)
    if (!entry) bySystem.set(system, (entry = { runs: 0, met: [0, 0, 0, 0], all: 0 }))
    entry.runs++
    const met = values.map((v, i) => v <= (bounds[i] as number))
    met.forEach((ok, i) => {
      if (ok) entry.met[i] = (entry.met[i] as number) + 1
    })
    if (met.every(Boolean)) entry.all++
  }
  return bySystem
}

async function savedBenches(files: readonly string[]): Promise<[string, SavedBench][]> {
  const paths =
    files.length > 0
      ? files
      : (await readdir(RESULTS_DIR))
          .filter((f) => f.startsWith('bench-') && f.endsWith('.json'))
          .sort()
          .map((f) => join(RESULTS_DIR, f))
  return Promise.all(
    paths.map(async (p) => [p, JSON.parse(await readFile(p, 'utf8')) as SavedBench] as const),
  )
}

const signed = (v: number): string => (v >= 0 ? '+' : '') + v.toFixed(2)

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      p50: { type: 'string' },
      p99: { type: 'string' },
      runs: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  })
  if (values.help) {
    console.log(
      'npm run bench:latency-bounds -- [--p50 MS] [--p99 MS] [--runs] [bench-result.json ...]\n' +
        '  Counts the saved overhead runs (all of loadtest/results by default) in which each\n' +
        '  system stayed within direct + MS at p50 (default 0.3) and p99 (default 1), at\n' +
        '  1000 req/s and at the half rate. --runs also lists every run.',
    )
    return
  }
  const p50 = numberFlag('p50', values.p50, 0.3, 0)
  const p99 = numberFlag('p99', values.p99, 1, 0)
  const all: Excess[] = []
  const rows: string[][] = []
  for (const [path, bench] of await savedBenches(positionals)) {
    const excesses = excessesOf(bench)
    all.push(...excesses)
    const name = path.slice(path.lastIndexOf('/') + 1)
    const kind = bench.quick ? 'quick' : 'full'
    const commit = bench.machine?.git?.commit?.slice(0, 7) ?? '?'
    for (const e of excesses)
      rows.push([
        name,
        kind,
        commit,
        e.system + (e.flawed ? ' (refusals)' : ''),
        ...e.values.map(signed),
      ])
  }
  if (all.length === 0) {
    console.log(`No overhead run with direct's open-loop windows in ${RESULTS_DIR}.`)
    return
  }
  if (values.runs) {
    console.log(formatMarkdownTable(['result', 'kind', 'commit', 'system', ...COLUMNS], rows, 4))
    console.log()
  }
  const counts = [...tally(all, p50, p99)].map(([system, t]) => [
    system,
    String(t.runs),
    ...t.met.map(String),
    String(t.all),
  ])
  console.log(`Runs within direct + ${p50} ms at p50 and + ${p99} ms at p99, same run:\n`)
  console.log(formatMarkdownTable(['system', 'runs', ...COLUMNS, 'all four'], counts))
}

await main()
