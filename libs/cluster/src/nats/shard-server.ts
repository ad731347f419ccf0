import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import {
  shardSubject,
  type AdmissionReply,
  type ShardMessage,
  type TicketProgress,
} from '@fairlane/protocol'
import type { Actor, AdmissionLease } from '@fairlane/protocol'
import { settleWithin } from '../settle-within.ts'

/** Longest a shard's subscription drains before it is simply dropped. */
const DRAIN_MS = 1_000

export interface ShardServerOptions {
  readonly nc: NatsConnection
  readonly actor: Actor
  /**
   * A lease whose `done` never arrives (its ingress node died mid-request) is released after
   * this long, so concurrency cannot leak. Longer than any request may take.
   */
  readonly leaseTtlMs?: number
  /**
   * How often a waiting ticket's ingress hears `waiting`; ingress takes a longer silence for
   * a dead owner (NatsTransport's silenceMs, which must be larger).
   */
  readonly progressEveryMs?: number
}

interface Waiting {
  readonly shard: number
  readonly controller: AbortController
  readonly msg: Msg
}

interface HeldLease {
  readonly lease: AdmissionLease
  readonly expiresAt: number
}

/**
 * Actor side of the cluster: answers the tickets of the shards this node owns. Which shards
 * it owns is decided by the shard leases; this class only serves and stops serving them.
 */
export class ShardServer {
  readonly #nc: NatsConnection
  readonly #actor: Actor
  readonly #leaseTtlMs: number
  readonly #subscriptions = new Map<number, Subscription>()
  readonly #waiting = new Map<string, Waiting>()
  readonly #leases = new Map<string, HeldLease>()
  readonly #sweeper: NodeJS.Timeout
  readonly #progress: NodeJS.Timeout
  #nextLease = 0

  constructor(options: ShardServerOptions) {
    this.#nc = options.nc
    this.#actor = options.actor
    this.#leaseTtlMs = options.leaseTtlMs ?? 15 * 60_000
    this.#sweeper = setInterval(() => this.#expireLeases(), Math.min(10_000, this.#leaseTtlMs / 2))
    this.#sweeper.unref()
    this.#progress = setInterval(
      () => this.#tell([...this.#waiting.values()], 'waiting'),
      options.progressEveryMs ?? 1_000,
    )
    this.#progress.unref()
  }

  get shards(): number[] {
    return [...this.#subscriptions.keys()]
  }

  /** Requests admitted and not yet done. */
  get leases(): number {
    return this.#leases.size
  }

  serve(shard: number): void {
    if (this.#subscriptions.has(shard)) return
    const subscription = this.#nc.subscribe(shardSubject(shard), {
      callback: (err, msg) => {
        if (!err) this.#handle(msg, shard)
      },
    })
    this.#subscriptions.set(shard, subscription)
  }

  /**
   * Stops taking new tickets for a shard and hands its waiting tickets over: their ingress
   * hears `moved` and resubmits them to the shard's next owner. Admitted requests still
   * finish here (their `done` still arrives on the subject until it is drained).
   */
  async stopServing(shard: number): Promise<void> {
    const subscription = this.#subscriptions.get(shard)
    if (!subscription) return
    this.#subscriptions.delete(shard)
    // A drain waits for the server to confirm; while NATS is away that never comes, so the
    // subscription is dropped on this side after a short wait (a closed connection has
    // dropped it already).
    if (!(await settleWithin(subscription.drain(), DRAIN_MS))) subscription.unsubscribe()
    const moving: Waiting[] = []
    for (const [requestId, waiting] of this.#waiting) {
      if (waiting.shard !== shard) continue
      this.#waiting.delete(requestId)
      moving.push(waiting)
    }
    this.#tell(moving, 'moved')
    for (const waiting of moving) waiting.controller.abort()
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    clearInterval(this.#progress)
    await Promise.all([...this.#subscriptions.keys()].map((shard) => this.stopServing(shard)))
  }

  #handle(msg: Msg, shard: number): void {
    let message: ShardMessage
    try {
      message = msg.json<ShardMessage>()
    } catch {
      return
    }
    switch (message.kind) {
      case 'ticket':
        void this.#admit(msg, message, shard)
        return
      case 'done': {
        const held = this.#leases.get(message.leaseId)
        if (!held) return
        this.#leases.delete(message.leaseId)
        held.lease.release({
          ...(message.cost !== undefined ? { cost: message.cost } : {}),
          ...(message.upstream ? { upstream: message.upstream } : {}),
        })
        return
      }
      case 'cancel':
        this.#waiting.get(message.requestId)?.controller.abort()
        return
    }
  }

  async #admit(msg: Msg, message: ShardMessage & { kind: 'ticket' }, shard: number): Promise<void> {
    const { requestId } = message.ticket
    // The same ticket again means its ingress gave up on the first copy (it heard nothing
    // for too long): only the new copy is answered.
    this.#waiting.get(requestId)?.controller.abort()
    const waiting: Waiting = { shard, controller: new AbortController(), msg }
    this.#waiting.set(requestId, waiting)
    let reply: AdmissionReply
    try {
      const admission = await this.#actor.admit(message.ticket, waiting.controller.signal)
      if (admission.allowed) {
        const leaseId = `${process.pid}.${++this.#nextLease}.${requestId}`
        this.#leases.set(leaseId, {
          lease: admission.lease,
          expiresAt: Date.now() + this.#leaseTtlMs,
        })
        reply = { allowed: true, leaseId, views: admission.views, waitedMs: admission.waitedMs }
      } else {
        reply = admission
      }
    } finally {
      if (this.#waiting.get(requestId) === waiting) this.#waiting.delete(requestId)
    }
    // Admitted after the ticket was cancelled, moved or replaced, or nobody to tell: the
    // slot goes back at once. A refusal is always sent; a listener that moved on ignores it.
    const aborted = waiting.controller.signal.aborted
    if (!reply.allowed) msg.respond(JSON.stringify(reply))
    else if (aborted || !msg.respond(JSON.stringify(reply))) {
      this.#leases.get(reply.leaseId)?.lease.release()
      this.#leases.delete(reply.leaseId)
    }
  }

  #tell(waiting: readonly Waiting[], progress: TicketProgress['progress']): void {
    const body = JSON.stringify({ progress } satisfies TicketProgress)
    for (const { msg } of waiting) msg.respond(body)
  }

  #expireLeases(): void {
    const now = Date.now()
    for (const [id, held] of this.#leases) {
      if (held.expiresAt > now) continue
      this.#leases.delete(id)
      held.lease.release()
    }
  }
}
