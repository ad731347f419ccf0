import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { REPO_ROOT } from './paths.ts'

/** The parts of a V8 .cpuprofile (what `node --cpu-prof` writes) that self time needs. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number
    readonly callFrame: {
      readonly functionName: string
      readonly url: string
      readonly lineNumber: number
    }
  }[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface SelfTime {
  /** `function (file:line)`, with paths relative to the repo. */
  readonly frame: string
  readonly ms: number
  /** Share of the busy time: idle is left out, or a mostly idle profile would show nothing. */
  readonly percent: number
}

export interface ProfileSummary {
  readonly file: string
  readonly busyMs: number
  readonly topFunctions: readonly SelfTime[]
  readonly topFiles: readonly SelfTime[]
}

function where(url: string): string {
  if (!url) return '(native)'
  const path = url.startsWith('file://') ? new URL(url).pathname : url
  return path.startsWith(REPO_ROOT) ? relative(REPO_ROOT, path) : path
}

function top(totals: Map<string, number>, busyMs: number, count: number): SelfTime[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([frame, ms]) => ({
      frame,
      ms: Math.round(ms),
      percent: Math.round((ms / busyMs) * 1000) / 10,
    }))
}

/** Self time by function and by file for the newest profile in dir. */
export async function summarizeProfile(dir: string, count = 15): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()
  const file = files.at(-1)
  if (!file) throw new Error(`no .cpuprofile in ${dir}`)
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const functions = new Map<string, number>()
  const fileTotals = new Map<string, number>()
  let busyUs = 0
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)
    // A sample's time is the delta to the next one; the last sample has none.
    const us = profile.timeDeltas[i + 1] ?? 0
    if (!frame || frame.functionName === '(idle)') return
    busyUs += us
    const file = where(frame.url)
    const name = `${frame.functionName || '(anonymous)'} (${file}${frame.url ? `:${frame.lineNumber + 1}` : ''})`
    functions.set(name, (functions.get(name) ?? 0) + us / 1000)
    fileTotals.set(file, (fileTotals.get(file) ?? 0) + us / 1000)
  })
  const busyMs = busyUs / 1000
  return {
    file: join(dir, file),
    busyMs: Math.round(busyMs),
    topFunctions: top(functions, busyMs, count),
    topFiles: top(fileTotals, busyMs, count),
  }
}
