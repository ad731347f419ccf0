import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from '@fairlane/telemetry'

/** A URL's host and port only: user names and passwords in it never reach a log or an error. */
export function addressOf(urls: string): string {
  return urls
    .split(',')
    .map((url) => {
      try {
        return new URL(url.trim()).host
      } catch {
        return '(unparsable URL)'
      }
    })
    .join(',')
}

/**
 * A cluster node's start waits for NATS and Redis instead of exiting (in Kubernetes an exit
 * is a crash loop): each is tried with backoff, 250 ms doubling to 5 s, until `timeoutMs`
 * after the start. Meanwhile `missing` names what is not there yet, for /readyz.
 */
export class StartWait {
  readonly #logger: Logger
  readonly #giveUpAt: number
  readonly #missing = new Set<string>(['starting'])

  constructor(timeoutMs: number, logger: Logger) {
    this.#logger = logger
    this.#giveUpAt = Date.now() + timeoutMs
  }

  get missing(): string[] {
    return [...this.#missing]
  }

  /**
   * NATS and Redis answered: what is left is joining the cluster (reading the stored config,
   * opening the lease bucket, taking the first shard leases), named as such on /readyz.
   */
  joining(): void {
    this.#missing.delete('starting')
    this.#missing.add('joining')
  }

  /** Time left to wait (for steps that take their own deadline). */
  get remainingMs(): number {
    return Math.max(0, this.#giveUpAt - Date.now())
  }

  /**
   * Runs `attempt` until it succeeds. `what` names the dependency ("nats"), `address` where it
   * was looked for; `why` gives a better reason than the attempt's own error when there is one
   * (a client that keeps its last connection error).
   */
  async until<T>(
    what: string,
    address: string,
    attempt: () => Promise<T>,
    why?: () => string | undefined,
  ): Promise<T> {
    for (let backoff = 250, tries = 1; ; tries++, backoff = Math.min(backoff * 2, 5_000)) {
      try {
        const result = await attempt()
        if (this.#missing.delete(what) && tries > 1) {
          this.#logger.info({ [what]: address }, `${what} reachable; start continues`)
        }
        return result
      } catch (err) {
        const reason = why?.() ?? (err instanceof Error ? err.message : String(err))
        if (Date.now() + backoff > this.#giveUpAt) {
          throw new Error(`${what} at ${address} could not be reached: ${reason}`, { cause: err })
        }
        if (!this.#missing.has(what)) {
          this.#missing.add(what)
          this.#logger.warn(
            { [what]: address, err: reason, waitMs: this.remainingMs },
            `waiting for ${what} at ${address}`,
          )
        }
        await delay(backoff)
      }
    }
  }
}
