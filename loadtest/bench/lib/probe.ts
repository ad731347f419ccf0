import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const PRELOAD = fileURLToPath(new URL('./probe-preload.ts', import.meta.url))

/** What a probed process says about itself (probe-preload.ts). */
interface ProbeSample {
  /** Event-loop delay since the previous sample, p99 and max, ms. */
  readonly eventLoopDelayP99Ms: number
  readonly eventLoopDelayMaxMs: number
  readonly rssBytes: number
  /**
   * Since the last sample: bytes allocated on the JS heap, minor (scavenge) and major
   * (mark-compact) collections, and the collector's pauses in all and the longest, ms.
   */
  readonly allocatedBytes?: number
  readonly minorGcs?: number
  readonly majorGcs?: number
  readonly gcPauseMs?: number
  readonly gcMaxPauseMs?: number
  /** Heap in use right after a forced full GC: what the process really holds. */
  readonly heapUsedAfterGcBytes?: number
  readonly heapUsedBytes?: number
}

let dir: string | undefined

function probeDir(): string {
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), 'fairlane-bench-probe-'))
    process.once('exit', () => rmSync(made, { recursive: true, force: true }))
    dir = made
  }
  return dir
}

/** Node arguments and environment that load the probe into a child. */
export function probeLaunch(): { args: string[]; env: Record<string, string> } {
  return { args: ['--import', PRELOAD], env: { BENCH_PROBE_DIR: probeDir() } }
}

const sent = new Map<number, number>()

/**
 * Asks a probed process for a sample and waits for it. The sample closes the process's
 * event-loop window and opens the next; `gc` forces a full GC first (outside the window:
 * take it after a measured run, not inside one).
 */
async function sampleProcess(
  pid: number,
  options: { gc?: boolean; timeoutMs?: number } = {},
): Promise<ProbeSample | undefined> {
  const file = join(probeDir(), `${pid}.json`)
  writeFileSync(`${file}.cmd`, options.gc ? 'gc' : '')
  const expected = (sent.get(pid) ?? 0) + 1
  sent.set(pid, expected)
  try {
    process.kill(pid, 'SIGUSR2')
  } catch {
    return undefined
  }
  const deadline = performance.now() + (options.timeoutMs ?? 5_000)
  while (performance.now() < deadline) {
    try {
      const sample = JSON.parse(readFileSync(file, 'utf8')) as ProbeSample & { seq: number }
      if (sample.seq >= expected) return sample
    } catch {
      // Not written yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return undefined
}

/** RSS of any process from /proc (Linux), for those that cannot be probed (nginx, redis). */
function rssOf(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
    return kb === undefined ? undefined : Number(kb) * 1024
  } catch {
    return undefined
  }
}

/** One process's figures for a window: probed ones say all; others only their RSS. */
export type ProcessFigures = Partial<ProbeSample>

/**
 * Samples every role: the probed pids through their probe (closing their event-loop window),
 * the others (nginx, redis-server) by their RSS alone.
 */
export async function sampleRoles(
  pids: Readonly<Record<string, number>>,
  probed: ReadonlySet<number>,
  options: { gc?: boolean } = {},
): Promise<Record<string, ProcessFigures>> {
  const figures: Record<string, ProcessFigures> = {}
  for (const [role, pid] of Object.entries(pids)) {
    const sample = probed.has(pid) ? await sampleProcess(pid, options) : undefined
    const rssBytes = sample?.rssBytes ?? rssOf(pid)
    figures[role] = sample ?? (rssBytes === undefined ? {} : { rssBytes })
  }
  return figures
}
