import { Agent, get } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { CallerRecord, percentileOf } from '@fairlane/testing'
import type { LoadRequest } from './measurement.ts'
import { addInto, pooled, snapshot } from './noisy-neighbour.ts'

/** What an open-loop sender at a fixed rate saw over the measured window. */
export interface RateMeasurement {
  /** Requests per second asked for, and actually sent (the generator may fall short). */
  readonly offeredPerSec: number
  readonly sentPerSec: number
  /** 2xx per second: what the system admitted and the upstream answered. */
  readonly servedPerSec: number
  /** 429 and 503 per second. */
  readonly refusedPerSec: number
  /** Other statuses and transport errors, in total. */
  readonly failed: number
  /** Latency of 2xx answers to requests sent in the window (nearest rank, ms), from each send. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Mean latency of 2xx answers (ms): with two kinds of answer, fast and slow, it shows their mix. */
  readonly meanMs: number
  /**
   * p50 of 2xx latencies less the wait in Fairlane's queue each answer names
   * (`X-Fairlane-Queue-Ms`, whole ms): the path's cost apart from waiting for the limit. NaN
   * when no answer names one (another system).
   */
  readonly p50LessQueueMs: number
  readonly samples: number
  /** Served per second by each target (instance), in the order given. */
  readonly servedPerSecByTarget: readonly number[]
  readonly durationSec: number
  /** The Go sender's: how late its sends in the window went out, 99th percentile (ms). */
  readonly senderLateP99Ms?: number
}

/** The tick of the sender: each tick sends every request that is due by then. */
const TICK_MS = 1

/**
 * Sends `ratePerSec` requests per second whatever the answers, round robin over the targets
 * (a balancer in front of N instances). Timers cannot fire more often than once a millisecond,
 * so each tick sends all requests due since the start rather than one per tick: the rate holds
 * at thousands per second, and a late tick is caught up in the next, not lost.
 */
class OpenLoop {
  readonly records: CallerRecord[]
  /** Latencies of 2xx answers that named their queue wait, less that wait, in the window. */
  lessQueueMs: number[] = []
  readonly #targets: readonly LoadRequest[]
  // node:http rather than fetch: fetch's own per-request work would be added to every latency.
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1024 })
  readonly #inFlight = new Set<Promise<void>>()
  readonly #timer: NodeJS.Timeout
  readonly #started = performance.now()
  #sent = 0
  /**
   * Latencies count only for requests sent since then: a request of the warm-up that waited
   * out a SYN retry (a server's accept queue overflowing while the sender opened its first
   * connections) would otherwise land in the window with a second or more it did not spend there.
   */
  #windowOpenedAt = 0

  constructor(targets: readonly LoadRequest[], ratePerSec: number) {
    this.#targets = targets
    this.records = targets.map((_, i) => new CallerRecord(`target-${i}`))
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.#started) / 1000) * ratePerSec)
      while (this.#sent < due) this.#send(this.#sent++ % targets.length)
    }, TICK_MS)
  }

  #send(index: number): void {
    const target = this.#targets[index] as LoadRequest
    const record = this.records[index] as CallerRecord
    record.sent++
    const started = performance.now()
    const done = new Promise<void>((settle) => {
      let settled = false
      const resolve = (): void => {
        settled = true
        settle()
      }
      get(target.url, { agent: this.#agent, headers: target.headers }, (response) => {
        const status = response.statusCode ?? 0
        response.resume()
        response.once('end', () => {
          if (settled) return
          if (status >= 200 && status < 300) {
            record.served++
            if (started >= this.#windowOpenedAt) {
              const latency = performance.now() - started
              record.latenciesMs.push(latency)
              const queued = Number(response.headers['x-fairlane-queue-ms'])
              // Absent (another system) or malformed: NaN, which would also spoil the sort.
              if (Number.isFinite(queued)) this.lessQueueMs.push(latency - queued)
            }
          } else if (status === 429 || status === 503) {
            record.refused++
          } else {
            record.failed++
          }
          resolve()
        })
        response.once('error', () => {
          if (settled) return
          record.failed++
          resolve()
        })
      }).once('error', () => {
        if (settled) return
        record.failed++
        resolve()
      })
    })
    this.#inFlight.add(done)
    void done.finally(() => this.#inFlight.delete(done))
  }

  /** Starts the measured window: counts restart, and only requests sent from now are timed. */
  openWindow(): void {
    this.#windowOpenedAt = performance.now()
    for (const record of this.records) record.reset()
    this.lessQueueMs = []
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await Promise.allSettled([...this.#inFlight])
    this.#agent.destroy()
  }
}

/**
 * An open-loop measurement at a fixed rate; `onMeasure` is called when the measured window
 * opens, and what it returns when the window closes. Either sender does it (the Go one in
 * go-sender.ts).
 */
export type MeasureAtRate = (
  targets: readonly LoadRequest[],
  ratePerSec: number,
  durationSec: number,
  warmupSec: number,
  onMeasure?: () => (() => void) | Promise<() => void>,
  /** Where the window's records go too, to be pooled with other windows at the same rate. */
  pool?: PooledWindows,
) => Promise<RateMeasurement>

/**
 * Several windows at one rate (taken in rounds, minutes apart) as one: their requests pooled,
 * so a percentile is over every request of every window and a rate over their summed length.
 */
export class PooledWindows {
  readonly #records: CallerRecord[] = []
  readonly #lessQueueMs: number[] = []
  readonly #windowsP99Ms: number[] = []
  #elapsedSec = 0
  #senderLateP99Ms: number | undefined

  add(
    records: readonly CallerRecord[],
    lessQueueMs: readonly number[],
    elapsedSec: number,
    senderLateP99Ms?: number,
  ): void {
    records.forEach((record, i) =>
      addInto((this.#records[i] ??= new CallerRecord(record.name)), record),
    )
    for (const latency of lessQueueMs) this.#lessQueueMs.push(latency)
    this.#windowsP99Ms.push(pooled(records).percentile(99))
    this.#elapsedSec += elapsedSec
    if (senderLateP99Ms !== undefined)
      this.#senderLateP99Ms = Math.max(this.#senderLateP99Ms ?? 0, senderLateP99Ms)
  }

  /** Each window's own p99, in the order taken. */
  get windowsP99Ms(): readonly number[] {
    return this.#windowsP99Ms
  }

  /** The windows as one; the sender's lateness is its worst window's. */
  measurement(ratePerSec: number): RateMeasurement {
    const measurement = rateMeasurementOf(
      this.#records,
      this.#lessQueueMs,
      this.#elapsedSec,
      ratePerSec,
    )
    return this.#senderLateP99Ms === undefined
      ? measurement
      : { ...measurement, senderLateP99Ms: this.#senderLateP99Ms }
  }
}

/**
 * Open-loop load at a fixed rate over the targets. Unlike the closed loop of wrk or
 * autocannon, a slow or refusing system does not slow the sender down, so the figures are at
 * the rate asked for. The warm-up runs on the same sender (a limiter's initial burst is spent
 * in it) and is thrown away; `onMeasure` is called when the measured window opens and its
 * result when it closes (CPU watching). It may be asynchronous: the window is already open
 * while it runs, so what it sets off (a fault, in the resilience scenario) is measured.
 */
export const measureAtRate: MeasureAtRate = async (
  targets,
  ratePerSec,
  durationSec,
  warmupSec,
  onMeasure,
  pool,
) => {
  const loop = new OpenLoop(targets, ratePerSec)
  let records: CallerRecord[]
  let lessQueueMs: number[]
  let elapsedSec: number
  try {
    await sleep(warmupSec * 1000)
    loop.openWindow()
    const started = performance.now()
    // The window is open while onMeasure runs: a fault it sets off (resilience) is inside it.
    const finish = await onMeasure?.()
    await sleep(Math.max(0, durationSec * 1000 - (performance.now() - started)))
    records = loop.records.map(snapshot)
    lessQueueMs = [...loop.lessQueueMs]
    elapsedSec = (performance.now() - started) / 1000
    finish?.()
  } finally {
    await loop.stop()
  }
  pool?.add(records, lessQueueMs, elapsedSec)
  return rateMeasurementOf(records, lessQueueMs, elapsedSec, ratePerSec)
}

/**
 * What a window's records come to: each target's counts and 2xx latencies, the latencies less
 * the queue wait their answers named, over the window's length.
 */
export function rateMeasurementOf(
  records: readonly CallerRecord[],
  lessQueueMs: readonly number[],
  elapsedSec: number,
  ratePerSec: number,
): RateMeasurement {
  const all = pooled(records)
  return {
    offeredPerSec: ratePerSec,
    sentPerSec: all.sent / elapsedSec,
    servedPerSec: all.served / elapsedSec,
    refusedPerSec: all.refused / elapsedSec,
    failed: all.failed,
    p50Ms: all.percentile(50),
    p99Ms: all.percentile(99),
    meanMs:
      all.latenciesMs.length > 0
        ? all.latenciesMs.reduce((sum, v) => sum + v, 0) / all.latenciesMs.length
        : Number.NaN,
    p50LessQueueMs: percentileOf(lessQueueMs, 50),
    samples: all.latenciesMs.length,
    servedPerSecByTarget: records.map((r) => r.served / elapsedSec),
    durationSec: elapsedSec,
  }
}
