import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CallerRecord } from '@fairlane/testing'
import { launch } from './child.ts'
import { rateMeasurementOf, type MeasureAtRate } from './fixed-rate.ts'
import { REPO_ROOT } from './paths.ts'

const SOURCE = join(REPO_ROOT, 'loadtest/sender')
const BINARY = join(SOURCE, 'sender')

/** What one target saw in the window, as the sender reports it (loadtest/sender/tally.go). */
interface Tally {
  readonly sent: number
  readonly served: number
  readonly refused: number
  readonly failed: number
  readonly latenciesMs: readonly number[] | null
  readonly lessQueueMs: readonly number[] | null
}

interface SenderEvent {
  readonly event: 'window-open' | 'window-closed' | 'result'
  readonly elapsedSec?: number
  readonly targets?: readonly Tally[]
  /** How late the window's sends went out after their due time, 99th percentile. */
  readonly lateP99Ms?: number
}

let built: Promise<string> | undefined

/**
 * Builds the sender, once per bench (Go's build cache makes a rebuild take a moment): before
 * any system starts, so the build's CPU lands in no measurement. GOTOOLCHAIN=local: an older
 * Go fails with its own message rather than downloading the toolchain go.mod names.
 */
export function buildGoSender(): Promise<string> {
  built ??= promisify(execFile)('go', ['build', '-o', BINARY, '.'], {
    cwd: SOURCE,
    env: { ...process.env, GOTOOLCHAIN: 'local' },
  }).then(
    () => BINARY,
    (err: Error & { stderr?: string }) => {
      // What go said (a go.mod needing a newer Go, say), not "Command failed: go build …";
      // a missing go has no output, and its message says so ("spawn go ENOENT").
      const said = err.stderr?.trim().split('\n').at(-1) || err.message
      throw new Error(`Go could not build loadtest/sender: ${said}`, { cause: err })
    },
  )
  return built
}

/**
 * The same measurement as measureAtRate, from the Go sender in a process of its own, on the
 * same schedule (what is due when a timer wakes, about every millisecond; how the sends group
 * may differ, as Go's timers wake more finely when its runtime is busy). Its HTTP client does
 * not share an event loop with the bench. It also times requests of the window answered after
 * it closed, where the Node sender leaves them out, and reports how late its sends went out.
 */
export const measureAtRateWithGo: MeasureAtRate = async (
  targets,
  ratePerSec,
  durationSec,
  warmupSec,
  onMeasure,
  pool,
) => {
  const binary = await buildGoSender()
  const sender = launch('go-sender', binary, [])
  // What onMeasure or its finish threw: the sender is stopped, and it is thrown once it exited.
  let failure: unknown
  const failed = (err: unknown): undefined => {
    failure ??= err
    void sender.stop()
    return undefined
  }
  let finish: Promise<(() => void) | undefined> = Promise.resolve(undefined)
  let windowClosed: Promise<void> = Promise.resolve()
  let result: SenderEvent | undefined
  sender.onLine((line) => {
    // Its error output comes here too: only its events are JSON.
    if (!line.startsWith('{"event"')) return
    const event = JSON.parse(line) as SenderEvent
    // The window is open while onMeasure runs: what it sets off is measured.
    if (event.event === 'window-open') finish = Promise.resolve().then(onMeasure).catch(failed)
    else if (event.event === 'window-closed')
      windowClosed = finish.then((done) => done?.()).catch(failed)
    else result = event
  })
  sender.send(
    JSON.stringify({
      targets: targets.map(({ url, headers }) => ({ url, headers })),
      ratePerSec,
      warmupSec,
      durationSec,
    }),
  )
  const exit = await sender.exited
  await windowClosed
  if (failure !== undefined) throw failure
  if (exit !== 0 || !result?.targets || result.elapsedSec === undefined) {
    throw new Error(`the Go sender failed (exit ${exit})\n${sender.output()}`)
  }
  const { records, lessQueueMs } = recordsOf(result.targets)
  pool?.add(records, lessQueueMs, result.elapsedSec, result.lateP99Ms)
  return {
    ...rateMeasurementOf(records, lessQueueMs, result.elapsedSec, ratePerSec),
    ...(result.lateP99Ms !== undefined ? { senderLateP99Ms: result.lateP99Ms } : {}),
  }
}

function recordsOf(tallies: readonly Tally[]): {
  records: CallerRecord[]
  lessQueueMs: number[]
} {
  const records = tallies.map((t, i) => {
    const record = new CallerRecord(`target-${i}`)
    record.sent = t.sent
    record.served = t.served
    record.refused = t.refused
    record.failed = t.failed
    for (const latency of t.latenciesMs ?? []) record.latenciesMs.push(latency)
    return record
  })
  const lessQueueMs = tallies.flatMap((t) => t.lessQueueMs ?? [])
  return { records, lessQueueMs }
}
