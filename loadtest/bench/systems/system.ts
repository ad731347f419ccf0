import type { Child } from '../lib/child.ts'
import type { LoadRequest } from '../lib/measurement.ts'

/** What bench:proxy sends load to: the bare upstream or Fairlane (`npm run bench` uses contender.ts). */
export interface System {
  readonly name: string
  readonly request: LoadRequest
  /**
   * One request per instance when the system has several (the nodes of a cluster): the load
   * is spread over them, connection i to request i mod n. `request` is then the first.
   */
  readonly requests?: readonly LoadRequest[]
  /** The processes it started, by role, so CPU use can be told apart per process. */
  readonly processes: Readonly<Record<string, Child>>
  /** Settings that shape the figures, printed and recorded beside them. */
  readonly notes: readonly string[]
  /** Each node's `/metrics` (a cluster): its NATS traffic is counted during fixed-rate runs. */
  readonly metricsUrls?: readonly string[]
  /** Where its CPU profile goes when profiling was asked for and the system supports it. */
  readonly profileDir?: string
  /** Stops the processes this system started (not the shared upstream). */
  stop(): Promise<void>
}
