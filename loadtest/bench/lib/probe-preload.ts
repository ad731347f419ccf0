/**
 * Loaded into a measured Node process with `--import` (see probe.ts): on SIGUSR2 it writes what
 * only the process itself can know — its event-loop delay and garbage collections since the
 * last sample, its RSS and heap, after a forced GC when asked — to `$BENCH_PROBE_DIR/<pid>.json`.
 * The bench then reads those figures per measured window without the process having a port or
 * an API for it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { GCProfiler, getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * The collections of one window (V8's GCProfiler): how many minor (scavenge) and major
 * (mark-compact) collections ran, their pauses, and the bytes the process allocated on the JS
 * heap meanwhile (what the heap in use grew by between collections, which only allocation grows).
 */
class GcWindow {
  readonly #profiler = new GCProfiler()
  readonly #usedAtStart: number

  constructor() {
    this.#usedAtStart = getHeapStatistics().used_heap_size
    this.#profiler.start()
  }

  close(): Record<string, number> {
    const collections = this.#profiler.stop().statistics
    let used = this.#usedAtStart
    let allocated = 0
    let minor = 0
    let major = 0
    let pauseMs = 0
    let maxPauseMs = 0
    for (const c of collections) {
      allocated += Math.max(0, c.beforeGC.heapStatistics.usedHeapSize - used)
      used = c.afterGC.heapStatistics.usedHeapSize
      if (c.gcType === 'Scavenge' || c.gcType === 'MinorMarkSweep') minor++
      else if (c.gcType === 'MarkSweepCompact') major++
      // The profiler's cost is the pause, in µs (incremental marking's steps are pauses too).
      pauseMs += c.cost / 1000
      maxPauseMs = Math.max(maxPauseMs, c.cost / 1000)
    }
    allocated += Math.max(0, getHeapStatistics().used_heap_size - used)
    return {
      allocatedBytes: allocated,
      minorGcs: minor,
      majorGcs: major,
      gcPauseMs: pauseMs,
      gcMaxPauseMs: maxPauseMs,
    }
  }
}

const dir = process.env['BENCH_PROBE_DIR']
if (dir) {
  // A context made after the flag is set has `gc`; the process's own global does not change.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // Node's histogram holds the time between its timer's ticks, the 10 ms it asked for included:
  // what is reported is the delay beyond them.
  const resolutionMs = 10
  const delay = monitorEventLoopDelay({ resolution: resolutionMs })
  const beyondTick = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs)
  delay.enable()
  const file = join(dir, `${process.pid}.json`)
  let seq = 0
  let collections = new GcWindow()
  process.on('SIGUSR2', () => {
    let command = ''
    try {
      command = readFileSync(`${file}.cmd`, 'utf8').trim()
    } catch {
      // No command: a plain sample.
    }
    const sample: Record<string, number> = {
      seq: ++seq,
      // The histogram is in nanoseconds; an empty one (no sample yet) reports 0.
      eventLoopDelayP99Ms: beyondTick(delay.percentile(99)),
      eventLoopDelayMaxMs: beyondTick(delay.max),
    }
    Object.assign(sample, collections.close())
    if (command === 'gc') gc()
    // Opened after the forced GC: the next window counts only its own collections.
    collections = new GcWindow()
    const memory = process.memoryUsage()
    sample['rssBytes'] = memory.rss
    sample[command === 'gc' ? 'heapUsedAfterGcBytes' : 'heapUsedBytes'] = memory.heapUsed
    delay.reset()
    writeFileSync(`${file}.tmp`, JSON.stringify(sample))
    renameSync(`${file}.tmp`, file)
  })
}
