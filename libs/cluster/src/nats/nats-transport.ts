import type { NatsConnection } from '@nats-io/transport-node'
import { RequestError } from '@nats-io/transport-node'
import {
  shardSubject,
  type AdmissionReply,
  type ShardMessage,
  type Ticket,
} from '@fairlane/protocol'
import type { Admission, Transport } from '../transport.ts'

export interface NatsTransportOptions {
  readonly nc: NatsConnection
  /** The shard that owns a ticket's lane: shardOf(target, partition, shards). */
  readonly shardFor: (ticket: Ticket) => number
  /** Longest a ticket may wait for its reply: the longest tier wait plus a margin. */
  readonly requestTimeoutMs: number
  /**
   * How long to keep resubmitting a ticket that meets no responder (its shard between two
   * owners, a node that died before its lease expired): a short delay instead of an error.
   */
  readonly retryForMs?: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Ingress side of the cluster: a ticket is a NATS request on its shard's subject, answered by
 * whichever node holds the shard's lease. Ingress needs no membership table.
 */
export class NatsTransport implements Transport {
  readonly #nc: NatsConnection
  readonly #shardFor: (ticket: Ticket) => number
  readonly #timeoutMs: number
  readonly #retryForMs: number

  constructor(options: NatsTransportOptions) {
    this.#nc = options.nc
    this.#shardFor = options.shardFor
    this.#timeoutMs = options.requestTimeoutMs
    this.#retryForMs = options.retryForMs ?? 5_000
  }

  async submit(ticket: Ticket, signal?: AbortSignal): Promise<Admission> {
    const subject = shardSubject(this.#shardFor(ticket))
    const message: ShardMessage = { kind: 'ticket', ticket }
    const onAbort = () => this.#send(subject, { kind: 'cancel', requestId: ticket.requestId })
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const reply = await this.#request(subject, message, signal)
      if (!reply.allowed) return reply
      let released = false
      return {
        allowed: true,
        views: reply.views,
        waitedMs: reply.waitedMs,
        lease: {
          release: (outcome) => {
            if (released) return
            released = true
            this.#send(subject, {
              kind: 'done',
              leaseId: reply.leaseId,
              ...(outcome?.cost !== undefined ? { cost: outcome.cost } : {}),
            })
          },
        },
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async close(): Promise<void> {}

  async #request(
    subject: string,
    message: ShardMessage,
    signal?: AbortSignal,
  ): Promise<AdmissionReply> {
    const giveUpAt = Date.now() + this.#retryForMs
    for (let delay = 25; ; delay = Math.min(delay * 2, 500)) {
      try {
        const reply = await this.#nc.request(subject, JSON.stringify(message), {
          timeout: this.#timeoutMs,
        })
        return reply.json<AdmissionReply>()
      } catch (err) {
        const noResponders = err instanceof RequestError && err.isNoResponders()
        if (!noResponders || Date.now() + delay > giveUpAt || signal?.aborted) throw err
        await sleep(delay)
      }
    }
  }

  #send(subject: string, message: ShardMessage): void {
    // A lost `done` is not a leak: the owner frees a lease nobody releases after its TTL.
    try {
      this.#nc.publish(subject, JSON.stringify(message))
    } catch {
      // The connection is closing; the lease expires on the owner's side.
    }
  }
}
