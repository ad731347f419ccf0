import { isIP } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Agent, type Dispatcher } from 'undici'
import type { PinnedDestination } from '../destination-policy.ts'
import type { EndpointHealth } from './endpoint-health.ts'
import { errorOutcome, statusOutcome, type Outcome } from './upstream-outcome.ts'

export interface ProbeSpec {
  /**
   * Path and query from the endpoint's origin, e.g. `/healthz`: not appended to the
   * endpoint's base path, so a health path outside it (`/v1` base, `/healthz`) can be named.
   */
  readonly path: string
  readonly intervalMs: number
  /** Whole probe: connect, response head and body. Default: intervalMs, at most 5 000 ms. */
  readonly timeoutMs?: number
  /** Inclusive range of statuses that mean healthy. Default 200–399. */
  readonly expectedStatus?: { readonly min: number; readonly max: number }
  /** Sent with every probe, e.g. the upstream credential when the health path wants one. */
  readonly headers?: Readonly<Record<string, string>>
}

export interface ProbedEndpoint {
  /** The endpoint's configured URL; only its origin is used. */
  readonly url: string
  readonly health: EndpointHealth
  readonly probe: ProbeSpec
}

export interface HealthProberOptions {
  /**
   * Checks the endpoint against the destination policy and pins its address before each
   * probe, as a proxied call is (no DNS rebinding). Without it undici resolves the host.
   */
  readonly pin?: (url: string) => Promise<PinnedDestination>
  /** Spreads the first probes over one interval, so that nodes do not probe in step. */
  readonly random?: () => number
}

const DEFAULT_EXPECTED = { min: 200, max: 399 }

interface Loop {
  readonly endpoint: ProbedEndpoint
  timer: NodeJS.Timeout | undefined
  running: Promise<void> | undefined
}

/**
 * Active health checks: a GET of each endpoint's probe path every interval, recorded into
 * its EndpointHealth like any other call. The prober respects the circuit like a client
 * does: no probe while it is open, and a probe while half-open only when it gets a trial
 * slot, so a successful probe can close the circuit before any client request risks it.
 */
export class HealthProber {
  readonly #loops: Loop[]
  readonly #pin: HealthProberOptions['pin']
  readonly #random: () => number
  readonly #agent = new Agent()
  readonly #stop = new AbortController()
  #started = false
  #stopped = false

  constructor(endpoints: readonly ProbedEndpoint[], options: HealthProberOptions = {}) {
    this.#loops = endpoints.map((endpoint) => ({ endpoint, timer: undefined, running: undefined }))
    this.#pin = options.pin
    this.#random = options.random ?? Math.random
  }

  start(): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    for (const loop of this.#loops) {
      this.#schedule(loop, this.#random() * loop.endpoint.probe.intervalMs)
    }
  }

  /**
   * Stops the timers, aborts probes in flight (they record nothing) and closes connections.
   * A stopped prober stays stopped: a config reload builds a new one.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#started = false
    this.#stop.abort()
    for (const loop of this.#loops) clearTimeout(loop.timer)
    await Promise.all(this.#loops.map((loop) => loop.running))
    await this.#agent.close()
  }

  /** One probe of every endpoint now, as the timers would send it; resolves once recorded. */
  async probeAll(): Promise<void> {
    await Promise.all(this.#loops.map((loop) => this.#run(loop)))
  }

  #schedule(loop: Loop, delayMs: number): void {
    loop.timer = setTimeout(() => {
      void this.#run(loop).then(() => {
        if (this.#started) this.#schedule(loop, loop.endpoint.probe.intervalMs)
      })
    }, delayMs)
    loop.timer.unref()
  }

  /** Probes never overlap per endpoint: a slow one delays the next rather than piling up. */
  #run(loop: Loop): Promise<void> {
    loop.running ??= this.#probe(loop.endpoint).finally(() => (loop.running = undefined))
    return loop.running
  }

  async #probe({ url, health, probe }: ProbedEndpoint): Promise<void> {
    if (this.#stopped) return
    const trial = health.state === 'half-open'
    if (!health.tryAcquireTrial()) return
    const timeoutMs = probe.timeoutMs ?? Math.min(probe.intervalMs, 5_000)
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(timeoutMs)])
    let started = performance.now()
    let outcome: Outcome | undefined
    try {
      const target = await this.#target(url)
      started = performance.now()
      // undici reads `servername` per request (lib/core/request.js) but its types omit it.
      const options: Dispatcher.RequestOptions & { servername?: string } = {
        origin: target.origin,
        path: probe.path,
        method: 'GET',
        headers: { ...probe.headers, 'user-agent': 'fairlane-health-probe', ...target.headers },
        signal,
      }
      if (target.servername !== undefined) options.servername = target.servername
      const response = await this.#agent.request(options)
      outcome = probeOutcome(
        response.statusCode,
        performance.now() - started,
        probe.expectedStatus ?? DEFAULT_EXPECTED,
      )
      // Read (up to 64 KiB) so that the connection is reused; the status has already spoken.
      await response.body.dump({ signal, limit: 64 * 1024 }).catch(() => undefined)
    } catch (err) {
      outcome = errorOutcome(err, performance.now() - started)
    }
    if (outcome) health.record(outcome)
    else if (trial) health.releaseTrial()
  }

  /** Where to connect: the pinned address with the name in Host and SNI, like the forwarder. */
  async #target(
    url: string,
  ): Promise<{ origin: string; headers: Record<string, string>; servername?: string }> {
    if (!this.#pin) return { origin: new URL(url).origin, headers: {} }
    const destination = await this.#pin(url)
    const host = destination.family === 6 ? `[${destination.address}]` : destination.address
    const origin = `${destination.url.protocol}//${host}:${destination.port}`
    const headers = { host: destination.hostHeader }
    return destination.url.protocol === 'https:' && isIP(destination.hostname) === 0
      ? { origin, headers, servername: destination.hostname }
      : { origin, headers }
  }
}

/**
 * The operator's expected range decides, except that a 5xx is always a 'status-5xx' and a
 * 429 never fails: a rate-limited health path is a busy upstream, as for proxied calls.
 */
function probeOutcome(
  status: number,
  latencyMs: number,
  expected: { readonly min: number; readonly max: number },
): Outcome {
  if ((status >= expected.min && status <= expected.max) || status === 429) {
    return { ok: true, kind: 'success', latencyMs }
  }
  const outcome = statusOutcome(status, latencyMs)
  return outcome.ok ? { ok: false, kind: 'unexpected-status', latencyMs } : outcome
}
