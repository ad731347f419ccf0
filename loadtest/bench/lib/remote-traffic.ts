import { fileURLToPath } from 'node:url'
import type { CallerSpec } from '@fairlane/testing'
import { launch, NODE, type Child } from './child.ts'

const ENTRY = fileURLToPath(new URL('./traffic-process.ts', import.meta.url))

/** One caller's figures, as the traffic process reports them (latencies stay there). */
export interface RemoteRecord {
  readonly name: string
  readonly sent: number
  readonly served: number
  readonly refused: number
  readonly failed: number
  /** NaN (null in JSON) when nothing was served. */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
}

/** Traffic (from @fairlane/testing) running in a child process: see traffic-process.ts. */
export class RemoteTraffic {
  readonly child: Child

  private constructor(child: Child) {
    this.child = child
  }

  static async start(specs: readonly CallerSpec[]): Promise<RemoteTraffic> {
    const child = launch('traffic', NODE, [
      '--conditions=development',
      ENTRY,
      JSON.stringify(specs),
    ])
    await child.waitForLine(/^\{"ready":true\}$/, 15_000)
    return new RemoteTraffic(child)
  }

  async #ask(command: string, answer: RegExp): Promise<string> {
    const reply = this.child.waitForLine(answer, 30_000)
    this.child.send(command)
    const [line] = await reply
    return line
  }

  async reset(): Promise<void> {
    await this.#ask('reset', /^\{"reset":true\}$/)
  }

  async snapshot(): Promise<RemoteRecord[]> {
    const line = await this.#ask('snapshot', /^\{"records":.*\}$/)
    return (JSON.parse(line) as { records: RemoteRecord[] }).records
  }

  /** Waits for the requests in flight to finish, like Traffic.stop(). */
  async stop(): Promise<void> {
    if (!this.child.running) return
    await this.#ask('stop', /^\{"stopped":true\}$/)
    await this.child.exited
  }
}
