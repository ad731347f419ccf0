/**
 * Loaded into a measured Node process with `--import` (see probe.ts): on SIGUSR2 it writes what
 * only the process itself can know — its event-loop delay since the last sample, its RSS and
 * heap, after a forced GC when asked — to `$BENCH_PROBE_DIR/<pid>.json`. The bench then reads
 * those figures per measured window without the process having a port or an API for it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

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
    if (command === 'gc') gc()
    const memory = process.memoryUsage()
    sample['rssBytes'] = memory.rss
    sample[command === 'gc' ? 'heapUsedAfterGcBytes' : 'heapUsedBytes'] = memory.heapUsed
    delay.reset()
    writeFileSync(`${file}.tmp`, JSON.stringify(sample))
    renameSync(`${file}.tmp`, file)
  })
}
