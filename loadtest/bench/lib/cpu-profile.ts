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
    /** Samples by source line within the function; V8 writes it for JS functions. */
    readonly positionTicks?: readonly { readonly line: number; readonly ticks: number }[]
    readonly children?: readonly number[]
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
  /**
   * `file:line` by self time: V8 inlines small functions into their callers, so a function's
   * self time can hide which statement costs; the line does not.
   */
  readonly topLines: readonly SelfTime[]
  /**
   * Inclusive time by package: a sample counts for every package on its stack (once each),
   * so `fastify` includes the router and the hooks it calls, and the shares add up to more
   * than 100%. What a dependency costs, wherever its time is spent.
   */
  readonly topPackages: readonly SelfTime[]
}

/**
 * The package a frame belongs to: `node_modules/<name>` (scoped too), a workspace of this
 * repository (`libs/forward`, `services/fairlane`, `loadtest`), `node:internal` for Node's
 * own JavaScript, or the frame's name for V8's pseudo-frames ((garbage collector), (program)).
 */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node:internal'
  const path = url.startsWith('file://') ? new URL(url).pathname : url
  const modules = path.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const parts = path.slice(modules + '/node_modules/'.length).split('/')
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? path)
  }
  const inRepo = relative(REPO_ROOT, path)
  const [top, name] = inRepo.split('/')
  if (top === 'libs' || top === 'services') return `${top}/${name ?? ''}`
  return top ?? inRepo
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
export async function summarizeProfile(dir: string, count = 20): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()
  const file = files.at(-1)
  if (!file) throw new Error(`no .cpuprofile in ${dir}`)
  return summarizeProfileFile(join(dir, file), count)
}

/** Self time by function, by file and by source line for one .cpuprofile. */
export async function summarizeProfileFile(file: string, count = 20): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const functions = new Map<string, number>()
  const fileTotals = new Map<string, number>()
  const selfMsById = new Map<number, number>()
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parentOf.set(child, node.id)
  const packagesById = new Map<number, readonly string[]>()
  const packagesOf = (id: number): readonly string[] => {
    let found = packagesById.get(id)
    if (!found) {
      const set = new Set<string>()
      for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
        const frame = byId.get(at)?.callFrame
        if (frame && frame.functionName !== '(root)')
          set.add(packageOf(frame.url, frame.functionName))
      }
      found = [...set]
      packagesById.set(id, found)
    }
    return found
  }
  const packages = new Map<string, number>()
  let busyUs = 0
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame
    // A sample's time is the delta to the next one; the last sample has none.
    const us = profile.timeDeltas[i + 1] ?? 0
    if (!frame || frame.functionName === '(idle)') return
    busyUs += us
    const file = where(frame.url)
    const name = `${frame.functionName || '(anonymous)'} (${file}${frame.url ? `:${frame.lineNumber + 1}` : ''})`
    functions.set(name, (functions.get(name) ?? 0) + us / 1000)
    fileTotals.set(file, (fileTotals.get(file) ?? 0) + us / 1000)
    selfMsById.set(id, (selfMsById.get(id) ?? 0) + us / 1000)
    for (const name of packagesOf(id)) packages.set(name, (packages.get(name) ?? 0) + us / 1000)
  })
  // positionTicks count samples, not time: a node's self time is shared out by its lines' ticks.
  const lines = new Map<string, number>()
  for (const [id, selfMs] of selfMsById) {
    const node = byId.get(id)
    const ticks = node?.positionTicks ?? []
    const total = ticks.reduce((sum, t) => sum + t.ticks, 0)
    if (!node || total === 0) continue
    const file = where(node.callFrame.url)
    for (const t of ticks) {
      const key = `${file}:${t.line}`
      lines.set(key, (lines.get(key) ?? 0) + (selfMs * t.ticks) / total)
    }
  }
  const busyMs = busyUs / 1000
  return {
    file,
    busyMs: Math.round(busyMs),
    topFunctions: top(functions, busyMs, count),
    topFiles: top(fileTotals, busyMs, count),
    topLines: top(lines, busyMs, count),
    topPackages: top(packages, busyMs, count),
  }
}
