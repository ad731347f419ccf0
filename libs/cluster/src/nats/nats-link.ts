import type { NatsConnection } from '@nats-io/transport-node'

export interface NatsLinkEvents {
  /** The connection to `server` dropped; the client reconnects by itself. */
  readonly onDown?: (server: string) => void
  /** Connected again (to `server`) after `downMs` without NATS. */
  readonly onUp?: (server: string, downMs: number) => void
}

/**
 * Whether this node's NATS connection is up right now, from the client's own status events.
 * What depends on NATS asks it instead of waiting on a request that would only time out:
 * readiness, the shard leases (which stop writing to an absent store) and the drain.
 */
export class NatsLink {
  readonly #now: () => number
  #downSince: number | undefined

  constructor(nc: NatsConnection, events: NatsLinkEvents = {}, now: () => number = Date.now) {
    this.#now = now
    void this.#follow(nc, events)
  }

  get connected(): boolean {
    return this.#downSince === undefined
  }

  /** How long the connection has been down (0 while up). */
  get downForMs(): number {
    return this.#downSince === undefined ? 0 : this.#now() - this.#downSince
  }

  async #follow(nc: NatsConnection, events: NatsLinkEvents): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' && this.#downSince === undefined) {
        this.#downSince = this.#now()
        events.onDown?.(status.server)
      } else if (status.type === 'reconnect' && this.#downSince !== undefined) {
        const downMs = this.#now() - this.#downSince
        this.#downSince = undefined
        events.onUp?.(status.server, downMs)
      }
    }
    // The status iterator ends with the connection: a closed connection stays down.
    this.#downSince ??= this.#now()
  }
}
