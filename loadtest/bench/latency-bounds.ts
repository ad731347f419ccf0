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
import { runBench } from './lib/run-bench.ts'
import { formatMarkdownTable } from './lib/table.ts'

const USAGE = `npm run bench:latency-bounds -- [--p50 MS] [--p99 MS] [--runs] [bench-result.json ...]
  Counts the saved overhead runs (every loadtest/results/bench-*.json by default) in which
  each system stayed within direct + MS at p50 (default 0.3) and p99 (default 1), at 1000
  req/s and at the half rate, both measured in the same run. --runs also lists every run.`

interface Options {
  readonly p50Ms: number
  readonly p99Ms: number
  readonly runs: boolean
  readonly files: readonly string[]
}

/**
 * The part of a saved open-loop window this reads. A window with no answer saved its
 * percentiles as null (NaN in JSON).
 */
interface Window {
  readonly offeredPerSec: number
  readonly samples: number
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly failed: number
  readonly refusedPerSec: number
}

interface SavedRun {
  readonly system: string
  readonly atRate?: Window
  readonly atHalf?: Window
  /** Present since the fixed-rate windows went in rounds: each round's p99, the rounds pooled. */
  readonly atHalfWindowsP99Ms?: readonly number[]
}

interface SavedBench {
  readonly quick?: boolean
  /** Absent before `--sender`: the Node sender. */
  readonly settings?: { readonly overhead?: { readonly sender?: string } }
  readonly machine?: { readonly git?: { readonly commit?: string } }
  readonly scenarios?: readonly {
    readonly name: string
    readonly results?: { readonly runs?: readonly SavedRun[] }
  }[]
}

/** p50 and p99 over direct's, ms; undefined where the two windows cannot be compared. */
type Pair = readonly [number, number] | undefined

/** A system's latency over direct's in one run. */
interface Excess {
  readonly system: string
  readonly atRate: Pair
  readonly atHalf: Pair
  /** Refusals or failures in a window: its latencies are of fewer requests than were sent. */
  readonly flawed: boolean
}

const COLUMNS = ['p50 @ 1000/s', 'p99 @ 1000/s', 'p50 @ half', 'p99 @ half'] as const

/**
 * Two windows compare when both were at the same rate and both have answers: a run without
 * Fairlane gave each system half of its own maximum, and direct's half rate is then no one
 * else's.
 */
function over(system: Window | undefined, direct: Window | undefined): Pair {
  if (!system || !direct || system.offeredPerSec !== direct.offeredPerSec) return undefined
  const { p50Ms: p50, p99Ms: p99 } = system
  const { p50Ms: base50, p99Ms: base99 } = direct
  if (system.samples === 0 || direct.samples === 0) return undefined
  if (p50 === null || p99 === null || base50 === null || base99 === null) return undefined
  return [p50 - base50, p99 - base99]
}

/**
 * Every system's excess over direct in one saved bench; none without direct. Runs of the Go
 * sender count apart (`fairlane, go sender`): the two senders measure differently; so do runs
 * whose fixed-rate windows went in rounds and were pooled (`…, rounds`), against one window.
 */
function excessesOf(bench: SavedBench): Excess[] {
  const sender = bench.settings?.overhead?.sender ?? 'node'
  const runs = bench.scenarios?.find((s) => s.name === 'overhead')?.results?.runs ?? []
  const direct = runs.find((r) => r.system === 'direct')
  if (!direct) return []
  const suffix =
    (sender === 'node' ? '' : `, ${sender} sender`) +
    (direct.atHalfWindowsP99Ms === undefined ? '' : ', rounds')
  return runs
    .filter((run) => run !== direct)
    .map((run) => ({
      system: run.system + suffix,
      atRate: over(run.atRate, direct.atRate),
      atHalf: over(run.atHalf, direct.atHalf),
      flawed: [run.atRate, run.atHalf].some((w) => w && (w.failed > 0 || w.refusedPerSec > 0)),
    }))
    .filter((e) => e.atRate || e.atHalf)
}

/** Runs within a bound, out of the runs that measured it. */
class Count {
  met = 0
  of = 0
  /** Undefined: the run did not measure it. */
  record(met: boolean | undefined): void {
    if (met === undefined) return
    this.of++
    if (met) this.met++
  }
  toString(): string {
    return `${this.met} of ${this.of}`
  }
}

/** Per system: a count per bound, then one of the runs that measured all four and met them. */
function tally(excesses: readonly Excess[], options: Options): Map<string, Count[]> {
  const bounds = [options.p50Ms, options.p99Ms, options.p50Ms, options.p99Ms]
  const bySystem = new Map<string, Count[]>()
  for (const e of excesses) {
    let counts = bySystem.get(e.system)
    if (!counts) bySystem.set(e.system, (counts = [0, 1, 2, 3, 4].map(() => new Count())))
    const met = [e.atRate?.[0], e.atRate?.[1], e.atHalf?.[0], e.atHalf?.[1]].map((v, i) =>
      v === undefined ? undefined : v <= (bounds[i] as number),
    )
    met.forEach((m, i) => counts[i]?.record(m))
    counts[4]?.record(met.includes(undefined) ? undefined : met.every(Boolean))
  }
  return bySystem
}

async function resultFiles(files: readonly string[]): Promise<string[]> {
  if (files.length > 0) return [...files]
  return (await readdir(RESULTS_DIR))
    .filter((f) => f.startsWith('bench-') && f.endsWith('.json'))
    .sort()
    .map((f) => join(RESULTS_DIR, f))
}

async function readBench(path: string): Promise<SavedBench> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as SavedBench
  } catch (err) {
    throw new Error(`${path}: not a saved bench result (${(err as Error).message})`, {
      cause: err,
    })
  }
}

const signed = (v: number | undefined): string =>
  v === undefined ? '-' : (v >= 0 ? '+' : '') + v.toFixed(2)

function parse(argv: string[]): Options | undefined {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      p50: { type: 'string' },
      p99: { type: 'string' },
      runs: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  })
  if (values.help) return undefined
  return {
    p50Ms: numberFlag('p50', values.p50, 0.3, 0),
    p99Ms: numberFlag('p99', values.p99, 1, 0),
    runs: values.runs,
    files: positionals,
  }
}

async function main(options: Options): Promise<number> {
  const all: Excess[] = []
  const rows: string[][] = []
  for (const path of await resultFiles(options.files)) {
    const bench = await readBench(path)
    const excesses = excessesOf(bench)
    all.push(...excesses)
    const name = path.slice(path.lastIndexOf('/') + 1)
    const kind = bench.quick ? 'quick' : 'full'
    const commit = bench.machine?.git?.commit?.slice(0, 7) ?? '?'
    for (const e of excesses) {
      const system = e.system + (e.flawed ? ' (refused or failed)' : '')
      const values = [e.atRate?.[0], e.atRate?.[1], e.atHalf?.[0], e.atHalf?.[1]]
      rows.push([name, kind, commit, system, ...values.map(signed)])
    }
  }
  if (all.length === 0) {
    const where = options.files.length > 0 ? 'the files given' : RESULTS_DIR
    console.log(`No overhead run with direct's open-loop windows in ${where}.`)
    return 1
  }
  if (options.runs) {
    console.log(formatMarkdownTable(['result', 'kind', 'commit', 'system', ...COLUMNS], rows, 4))
    console.log()
  }
  const counts = [...tally(all, options)].map(([system, c]) => [system, ...c.map(String)])
  console.log(
    `Runs within direct + ${options.p50Ms} ms at p50 and + ${options.p99Ms} ms at p99, same run and rate:\n`,
  )
  console.log(formatMarkdownTable(['system', ...COLUMNS, 'all four'], counts))
  return 0
}

await runBench('bench:latency-bounds', parse, USAGE, main)
