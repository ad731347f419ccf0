import { fileURLToPath } from 'node:url'
import { launch, NODE, type Child } from './child.ts'

const ENTRY = fileURLToPath(new URL('./upstream-process.ts', import.meta.url))

/** The loopback echo upstream, running in its own process. */
export interface Upstream {
  readonly url: string
  readonly port: number
  readonly child: Child
  /** How long it holds every answer (± jitterMs); 0 answers at once. */
  readonly delayMs: number
  readonly jitterMs: number
  /** Requests it serves at once, the rest waiting in arrival order; 0 is no bound. */
  readonly capacity: number
  /**
   * Arrival times (ms, the upstream's clock) of the requests since the last call, oldest first;
   * only when launched with `arrivals: true`.
   */
  arrivals(): Promise<number[]>
  /** Holds every answer `ms` longer from now on (0 ends it); resolves once the upstream applied it. */
  slowDown(ms: number): Promise<void>
  /** Requests received since it started. */
  hits(): Promise<number>
  /**
   * Stops listening and drops its connections, the process staying (its port refuses
   * connections from then on); resolves with the requests it received until then.
   */
  goDown(): Promise<number>
}

export interface UpstreamLaunchOptions {
  /** Hold every answer this long (a fixed service time); default 0. */
  readonly delayMs?: number
  /** Spread the delay uniformly over delayMs ± jitterMs; default 0. */
  readonly jitterMs?: number
  /** Serve at most this many at a time, the others waiting in arrival order; default 0, no bound. */
  readonly capacity?: number
  /** Keep every request's arrival time, for `arrivals()`. */
  readonly arrivals?: boolean
  /** The child's name in messages; default `upstream`. */
  readonly name?: string
}

export async function launchUpstream(options: UpstreamLaunchOptions = {}): Promise<Upstream> {
  const delayMs = options.delayMs ?? 0
  const jitterMs = options.jitterMs ?? 0
  const capacity = options.capacity ?? 0
  const child = launch(
    options.name ?? 'upstream',
    NODE,
    [
      '--conditions=development',
      ENTRY,
      ...(delayMs > 0 ? ['--delay-ms', String(delayMs)] : []),
      ...(jitterMs > 0 ? ['--jitter-ms', String(jitterMs)] : []),
      ...(capacity > 0 ? ['--capacity', String(capacity)] : []),
      ...(options.arrivals ? ['--arrivals'] : []),
    ],
    { probe: true },
  )
  const [, port] = await child.waitForLine(/^\{"port":(\d+)\}$/, 15_000)
  return {
    url: `http://127.0.0.1:${port}`,
    port: Number(port),
    child,
    delayMs,
    jitterMs,
    capacity,
    async arrivals() {
      if (!options.arrivals) throw new Error('upstream launched without arrivals: true')
      const answer = child.waitForLine(/^\{"arrivals":.*\}$/, 10_000)
      child.send('arrivals')
      const [line] = await answer
      return (JSON.parse(line) as { arrivals: number[] }).arrivals
    },
    async slowDown(ms) {
      const answer = child.waitForLine(/^\{"slowMs":\d+(\.\d+)?\}$/, 10_000)
      child.send(`delay ${ms}`)
      await answer
    },
    async hits() {
      const answer = child.waitForLine(/^\{"hits":(\d+)\}$/, 10_000)
      child.send('hits')
      const [, hits] = await answer
      return Number(hits)
    },
    async goDown() {
      const answer = child.waitForLine(/^\{"closed":(\d+)\}$/, 10_000)
      child.send('close')
      const [, hits] = await answer
      return Number(hits)
    },
  }
}
