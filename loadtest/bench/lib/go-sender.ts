import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CallerRecord } from '@fairlane/testing'
import { launch } from './child.ts'
import { rateMeasurementOf, type RateMeasurement } from './fixed-rate.ts'
import type { LoadRequest } from './measurement.ts'
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
}

let built: Promise<string> | undefined

/** Builds the sender once per bench (Go's build cache makes a rebuild take a moment). */
function buildGoSender(): Promise<string> {
  built ??= promisify(execFile)('go', ['build', '-o', BINARY, '.'], { cwd: SOURCE }).then(
    () => BINARY,
    (err: Error) => {
      throw new Error(`--sender go needs Go to build loadtest/sender: ${err.message}`, {
        cause: err,
      })
    },
  )
  return built
}

/**
 * The same measurement as measureAtRate, from the Go sender in a process of its own: sends
 * go out at the same instants (what is due when a timer wakes, about every millisecond), but
 * its HTTP client costs less CPU than Node's and does not share an event loop with the bench.
 * It also times requests of the window answered after it closed, where the Node sender leaves
 * them out.
 */
export async function measureAtRateWithGo(
  targets: readonly LoadRequest[],
  ratePerSec: number,
  durationSec: number,
  warmupSec: number,
  onMeasure?: () => (() => void) | Promise<() => void>,
): Promise<RateMeasurement> {
  const binary = await buildGoSender()
  const sender = launch('go-sender', binary, [])
  let finish: Promise<(() => void) | undefined> = Promise.resolve(undefined)
  let windowClosed: Promise<void> = Promise.resolve()
  let result: SenderEvent | undefined
  sender.onLine((line) => {
    // Its error output comes here too: only its events are JSON.
    if (!line.startsWith('{"event"')) return
    const event = JSON.parse(line) as SenderEvent
    // The window is open while onMeasure runs: what it sets off is measured.
    if (event.event === 'window-open') finish = Promise.resolve(onMeasure?.())
    else if (event.event === 'window-closed') windowClosed = finish.then((done) => done?.())
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
  if (exit !== 0 || !result?.targets || result.elapsedSec === undefined) {
    throw new Error(`the Go sender failed (exit ${exit})\n${sender.output()}`)
  }
  return measurementOf(result.targets, result.elapsedSec, ratePerSec)
}

function measurementOf(
  tallies: readonly Tally[],
  elapsedSec: number,
  ratePerSec: number,
): RateMeasurement {
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
  return rateMeasurementOf(records, lessQueueMs, elapsedSec, ratePerSec)
}
