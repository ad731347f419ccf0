import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import { shardSubject, type AdmissionReply, type ShardMessage } from '@fairlane/protocol'
import type { Actor, AdmissionLease } from '../transport.ts'

export interface ShardServerOptions {
  readonly nc: NatsConnection
  readonly actor: Actor
  /**
   * A lease whose `done` never arrives (its ingress node died mid-request) is released after
   * this long, so concurrency cannot leak. Longer than any request may take.
   */
  readonly leaseTtlMs?: number
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
  readonly #waiting = new Map<string, AbortController>()
  readonly #leases = new Map<string, HeldLease>()
  readonly #sweeper: NodeJS.Timeout
  #nextLease = 0

  constructor(options: ShardServerOptions) {
    this.#nc = options.nc
    this.#actor = options.actor
    this.#leaseTtlMs = options.leaseTtlMs ?? 15 * 60_000
    this.#sweeper = setInterval(() => this.#expireLeases(), Math.min(10_000, this.#leaseTtlMs / 2))
    this.#sweeper.unref()
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
        if (!err) this.#handle(msg)
      },
    })
    this.#subscriptions.set(shard, subscription)
  }

  /** Stops taking new tickets for a shard; admitted requests still finish. */
  async stopServing(shard: number): Promise<void> {
    const subscription = this.#subscriptions.get(shard)
    if (!subscription) return
    this.#subscriptions.delete(shard)
    await subscription.drain()
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    await Promise.all([...this.#subscriptions.keys()].map((shard) => this.stopServing(shard)))
  }

  #handle(msg: Msg): void {
    let message: ShardMessage
    try {
      message = msg.json<ShardMessage>()
    } catch {
      return
    }
    switch (message.kind) {
      case 'ticket':
        void this.#admit(msg, message)
        return
      case 'done': {
        const held = this.#leases.get(message.leaseId)
        if (!held) return
        this.#leases.delete(message.leaseId)
        held.lease.release(message.cost !== undefined ? { cost: message.cost } : undefined)
        return
      }
      case 'cancel':
        this.#waiting.get(message.requestId)?.abort()
        return
    }
  }

  async #admit(msg: Msg, message: ShardMessage & { kind: 'ticket' }): Promise<void> {
    const controller = new AbortController()
    const { requestId } = message.ticket
    this.#waiting.set(requestId, controller)
    let reply: AdmissionReply
    try {
      const admission = await this.#actor.admit(message.ticket, controller.signal)
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
      this.#waiting.delete(requestId)
    }
    if (!msg.respond(JSON.stringify(reply)) && reply.allowed) {
      // Nobody to tell: give the slot back at once.
      this.#leases.get(reply.leaseId)?.lease.release()
      this.#leases.delete(reply.leaseId)
    }
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
