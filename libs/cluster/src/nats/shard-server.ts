import { randomBytes } from 'node:crypto'
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node'
import type { Span, Tracer } from '@opentelemetry/api'
import {
  decodeShardBatch,
  encodeReplyBatch,
  shardSubject,
  v1ShardSubject,
  WIRE_VERSION,
  type AdmissionRefusal,
  type AdmissionReply,
  type ReplyItem,
  type ShareGrant,
  type Ticket,
  type TicketProgress,
  type WireRefusal,
} from '@fairlane/protocol'
import type { Actor, Admission, AdmissionLease, LentAdmissions } from '@fairlane/protocol'
import { Batcher, flushAfter } from '../batcher.ts'
import { settleWithin } from '../settle-within.ts'
import type { BatchSettings } from './batch-settings.ts'
import { TicketTracing } from './ticket-tracing.ts'

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
  /** How answers to one ingress node are gathered into one message. */
  readonly batch?: BatchSettings
  /** Items in each batch of answers sent to an ingress node. */
  readonly onBatchSent?: (items: number) => void
  /**
   * A message was not read: sent by a node of another wire version (a version 1 ticket is
   * answered 503 cluster_unavailable), or garbled.
   */
  readonly onRefused?: (refusal: WireRefusal, subject: string) => void
  /** Leased shares: lent for this long (docs/cluster.md#leased-shares); none when absent. */
  readonly shares?: { readonly ttlMs: number; readonly max: number }
  /** Admissions lent in a share, returned unused, and shares revoked. */
  readonly onShares?: (event: 'lent' | 'returned' | 'revoked', count: number) => void
  /**
   * Traces: a ticket that carries a context (Ticket.trace) gets a consumer span under it,
   * and its admission a span under that. Off when absent.
   */
  readonly tracer?: Tracer
}

interface Waiting {
  readonly shard: number
  readonly controller: AbortController
  /** The ingress node's reply subject and the ticket's token there. */
  readonly replyTo: string | undefined
  readonly token: string
}

/**
 * What a version 1 ticket gets from this node: a refusal that version reads as a 503
 * cluster_unavailable, at once, rather than no answer (a wait for its whole retry window).
 */
const V1_REFUSAL: AdmissionRefusal = {
  allowed: false,
  code: 'cluster_unavailable',
  refusedBy: 'node',
  reason: 'bound',
  retryAfterMs: 1000,
  views: [],
}

/** What an ingress node asked to be lent with a ticket or a `share`: slots absent, as many as admissions. */
interface Want {
  readonly admissions: number
  readonly slots: number | undefined
}

interface HeldLease {
  readonly lease: AdmissionLease
  expiresAt: number
}

/** The admissions of a grant, kept while its ingress node may hand them out or hears of them. */
interface LentGrant {
  readonly lent: LentAdmissions
  /** Admissions not given back yet: no word refunds more than this. */
  outstanding: number
  expiresAt: number
}

/**
 * A lent grant or slot the owner has heard nothing of is forgotten twice the share's TTL
 * plus this after it was lent (its ingress node died before using it); ingress names what
 * it holds every quarter TTL, and each such word keeps it for the shard server's lease TTL.
 */
const SHARE_GRACE_MS = 1_000

/**
 * Actor side of the cluster: answers the tickets of the shards this node owns. Which shards
 * it owns is decided by the shard leases; this class only serves and stops serving them.
 */
export class ShardServer {
  readonly #nc: NatsConnection
  readonly #actor: Actor
  readonly #leaseTtlMs: number
  readonly #subscriptions = new Map<number, Subscription[]>()
  readonly #replies: Batcher<ReplyItem>
  readonly #onBatchSent: ((items: number) => void) | undefined
  readonly #onRefused: ((refusal: WireRefusal, subject: string) => void) | undefined
  readonly #waiting = new Map<string, Waiting>()
  readonly #leases = new Map<string, HeldLease>()
  readonly #grants = new Map<string, LentGrant>()
  readonly #shares: { readonly ttlMs: number; readonly max: number } | undefined
  readonly #onShares: ShardServerOptions['onShares']
  readonly #tracing: TicketTracing | undefined
  /** Per partition, the reply subjects of the ingress nodes it lent shares to. */
  readonly #holders = new Map<string, Set<string>>()
  /**
   * Names this server's lent admissions: a `done` or `settle` for them may reach the shard's
   * next owner, which must not take it for one of its own (pids repeat across containers).
   */
  readonly #shareIds = randomBytes(6).toString('hex')
  readonly #sweeper: NodeJS.Timeout
  readonly #progress: NodeJS.Timeout
  #nextLease = 0

  constructor(options: ShardServerOptions) {
    this.#nc = options.nc
    this.#actor = options.actor
    this.#leaseTtlMs = options.leaseTtlMs ?? 15 * 60_000
    this.#onBatchSent = options.onBatchSent
    this.#onRefused = options.onRefused
    this.#shares = options.shares
    this.#onShares = options.onShares
    this.#tracing = options.tracer ? new TicketTracing(options.tracer) : undefined
    this.#replies = new Batcher({
      maxItems: options.batch?.maxItems ?? 64,
      schedule: flushAfter(options.batch?.flushDelayMs ?? 0),
      send: (replyTo, items) => this.#publish(replyTo, items),
    })
    this.#sweeper = setInterval(
      () => this.#expireLeases(),
      Math.min(10_000, this.#leaseTtlMs / 2, this.#shares?.ttlMs ?? Infinity),
    )
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

  /** Requests admitted and not yet done, and slots lent. */
  get leases(): number {
    return this.#leases.size
  }

  /** Grants whose ingress node may still hand out or hear of their admissions. */
  get grants(): number {
    return this.#grants.size
  }

  serve(shard: number): void {
    if (this.#subscriptions.has(shard)) return
    const subscriptions = [
      this.#nc.subscribe(shardSubject(shard), {
        callback: (err, msg) => {
          if (!err) this.#handle(msg, shard)
        },
      }),
      // A node of version 1 still in the cluster sends here; it hears a refusal.
      this.#nc.subscribe(v1ShardSubject(shard), {
        callback: (err, msg) => {
          if (!err) this.#refuseV1(msg)
        },
      }),
    ]
    this.#subscriptions.set(shard, subscriptions)
  }

  /**
   * Stops taking new tickets for a shard and hands its waiting tickets over: their ingress
   * hears `moved` and resubmits them to the shard's next owner. Admitted requests still
   * finish here (their `done` still arrives on the subject until it is drained).
   */
  async stopServing(shard: number): Promise<void> {
    const subscriptions = this.#subscriptions.get(shard)
    if (!subscriptions) return
    this.#subscriptions.delete(shard)
    // A drain waits for the server to confirm; while NATS is away that never comes, so the
    // subscription is dropped on this side after a short wait (a closed connection has
    // dropped it already).
    await Promise.all(
      subscriptions.map(async (subscription) => {
        if (!(await settleWithin(subscription.drain(), DRAIN_MS))) subscription.unsubscribe()
      }),
    )
    const moving: Waiting[] = []
    for (const [requestId, waiting] of this.#waiting) {
      if (waiting.shard !== shard) continue
      this.#waiting.delete(requestId)
      moving.push(waiting)
    }
    this.#tell(moving, 'moved')
    for (const waiting of moving) waiting.controller.abort()
  }

  /**
   * A ticket of `partition` waits: every ingress node holding a share of it gives it back,
   * so that from now on its requests go through the queue.
   */
  revoke(partition: string): void {
    const holders = this.#holders.get(partition)
    if (!holders) return
    this.#holders.delete(partition)
    for (const replyTo of holders)
      this.#replies.add(replyTo, { token: '', reply: { revoke: partition } })
    this.#onShares?.('revoked', holders.size)
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    clearInterval(this.#progress)
    await Promise.all([...this.#subscriptions.keys()].map((shard) => this.stopServing(shard)))
    // The last answers, `moved` among them, go before the connection closes.
    this.#replies.close()
  }

  #handle(msg: Msg, shard: number): void {
    const batch = decodeShardBatch(msg.string())
    if ('refused' in batch) {
      this.#onRefused?.(batch, msg.subject)
      return
    }
    for (const message of batch.items) {
      switch (message.kind) {
        case 'ticket': {
          const trace = message.ticket.trace
          const consumer =
            this.#tracing && trace !== undefined
              ? this.#tracing.process(msg.subject, trace, batch.items.length)
              : undefined
          const admitted = this.#admit(
            batch.replyTo,
            message.token,
            message.ticket,
            shard,
            { admissions: message.want ?? 0, slots: message.slots },
            consumer,
          )
          if (consumer) void admitted.finally(() => consumer.end())
          else void admitted
          break
        }
        case 'share':
          if (batch.replyTo) {
            const want = { admissions: message.want, slots: message.slots }
            const grant = this.#lend(batch.replyTo, message.ticket, want, true) ?? null
            this.#replies.add(batch.replyTo, { token: message.token, reply: { grant } })
          }
          break
        case 'settle':
          this.#settle(message.used, message.unused)
          break
        case 'grant-state':
          this.#grantState(message.grant, message.unused, message.open)
          break
        case 'grant-used':
          this.#grants.get(message.grant)?.lent.ended({
            ...(message.cost !== undefined ? { cost: message.cost } : {}),
            ...(message.cents !== undefined ? { cents: message.cents } : {}),
            ...(message.upstream ? { upstream: message.upstream } : {}),
          })
          break
        case 'done': {
          const held = this.#leases.get(message.leaseId)
          if (!held) break
          this.#leases.delete(message.leaseId)
          held.lease.release({
            ...(message.cost !== undefined ? { cost: message.cost } : {}),
            ...(message.cents !== undefined ? { cents: message.cents } : {}),
            ...(message.upstream ? { upstream: message.upstream } : {}),
          })
          break
        }
        case 'cancel':
          this.#waiting.get(message.requestId)?.controller.abort()
          break
      }
    }
  }

  #refuseV1(msg: Msg): void {
    this.#onRefused?.(
      { refused: 'version', detail: `wire version 1, this node speaks ${WIRE_VERSION}` },
      msg.subject,
    )
    if (msg.reply) msg.respond(JSON.stringify(V1_REFUSAL))
  }

  async #admit(
    replyTo: string | undefined,
    token: string,
    ticket: Ticket,
    shard: number,
    want: Want,
    consumer?: Span,
  ): Promise<void> {
    const { requestId } = ticket
    // The same ticket again means its ingress gave up on the first copy (it heard nothing
    // for too long): only the new copy is answered.
    this.#waiting.get(requestId)?.controller.abort()
    const waiting: Waiting = { shard, controller: new AbortController(), replyTo, token }
    this.#waiting.set(requestId, waiting)
    let reply: AdmissionReply
    const admitting = consumer && this.#tracing?.admission(consumer, ticket)
    let admission: Admission | undefined
    try {
      admission = await this.#actor.admit(ticket, waiting.controller.signal)
      if (admission.allowed) {
        const leaseId = `${process.pid}.${++this.#nextLease}.${requestId}`
        this.#leases.set(leaseId, {
          lease: admission.lease,
          expiresAt: Date.now() + this.#leaseTtlMs,
        })
        const grant = replyTo && want.admissions > 0 ? this.#lend(replyTo, ticket, want) : undefined
        reply = {
          allowed: true,
          leaseId,
          views: admission.views,
          waitedMs: admission.waitedMs,
          ...(grant ? { grant } : {}),
        }
      } else {
        reply = admission
      }
    } finally {
      if (this.#waiting.get(requestId) === waiting) this.#waiting.delete(requestId)
      if (admitting) this.#tracing?.admitted(admitting, admission)
    }
    // Admitted after the ticket was cancelled, moved or replaced, or nobody to tell: the
    // slot goes back at once. A refusal is always sent; a listener that moved on ignores it.
    if (reply.allowed && (waiting.controller.signal.aborted || !replyTo)) {
      this.#releaseLease(reply.leaseId)
      if (reply.grant) this.#giveBack(reply.grant)
      return
    }
    if (replyTo) this.#replies.add(replyTo, { token, reply })
  }

  /**
   * Lends the ingress node at `replyTo` up to the admissions (and slots) it wants of the
   * ticket's lane. A `share` ask is a `topUp`: it comes from a node that holds a grant of the
   * lane. Undefined when nothing is lent.
   */
  #lend(replyTo: string, ticket: Ticket, want: Want, topUp = false): ShareGrant | undefined {
    const shares = this.#shares
    if (!shares || !this.#actor.prefetch) return undefined
    const count = Math.min(want.admissions, shares.max)
    const prefetched = this.#actor.prefetch(ticket, count, topUp, want.slots ?? count)
    if (!prefetched.lent) return undefined
    const expiresAt = Date.now() + 2 * shares.ttlMs + SHARE_GRACE_MS
    const id = this.#nextId()
    this.#grants.set(id, { lent: prefetched.lent, outstanding: prefetched.admissions, expiresAt })
    const slots = prefetched.slots?.map((lease) => {
      const leaseId = this.#nextId()
      this.#leases.set(leaseId, { lease, expiresAt })
      return leaseId
    })
    let holders = this.#holders.get(prefetched.partition)
    if (!holders) this.#holders.set(prefetched.partition, (holders = new Set()))
    holders.add(replyTo)
    this.#onShares?.('lent', prefetched.admissions)
    const { admissions, views, lastViews } = prefetched
    return {
      partition: prefetched.partition,
      ttlMs: shares.ttlMs,
      id,
      admissions,
      views,
      ...(admissions > 1 ? { lastViews } : {}),
      ...(slots ? { slots } : {}),
    }
  }

  /** Names what this server lends, apart from what any other owner lends. */
  #nextId(): string {
    return `${this.#shareIds}.${++this.#nextLease}`
  }

  /** Lent concurrency slots: `used` ones are held (kept longer), `unused` ones freed. */
  #settle(used: readonly string[], unused: readonly string[]): void {
    const until = Date.now() + this.#leaseTtlMs
    for (const id of used) {
      const held = this.#leases.get(id)
      if (held) held.expiresAt = Math.max(held.expiresAt, until)
    }
    for (const id of unused) this.#releaseLease(id)
  }

  /**
   * A grant's ingress node gives back `unused` admissions (refunded), and says whether it
   * still holds any: an open grant is kept as long as a request may take, a closed one forgotten.
   */
  #grantState(id: string, unused: number, open: boolean): void {
    const held = this.#grants.get(id)
    if (!held) return
    const refunded = Math.min(unused, held.outstanding)
    if (refunded > 0) {
      held.outstanding -= refunded
      held.lent.refund(refunded)
      this.#onShares?.('returned', refunded)
    }
    if (open) held.expiresAt = Math.max(held.expiresAt, Date.now() + this.#leaseTtlMs)
    else this.#grants.delete(id)
  }

  /** A grant that never reached its ingress node: all of it comes back. */
  #giveBack(grant: ShareGrant): void {
    this.#grantState(grant.id, grant.admissions, false)
    this.#settle([], grant.slots ?? [])
  }

  #tell(waiting: readonly Waiting[], progress: TicketProgress['progress']): void {
    const reply: TicketProgress = { progress }
    for (const { replyTo, token } of waiting)
      if (replyTo) this.#replies.add(replyTo, { token, reply })
  }

  #publish(replyTo: string, items: ReplyItem[]): void {
    try {
      this.#nc.publish(replyTo, encodeReplyBatch(items))
      this.#onBatchSent?.(items.length)
    } catch {
      // The connection is closing: nobody will hear of these admissions, give them back.
      for (const { reply } of items) {
        if ('allowed' in reply && reply.allowed) this.#releaseLease(reply.leaseId)
        const grant = 'grant' in reply ? reply.grant : undefined
        if (grant) this.#giveBack(grant)
      }
    }
  }

  #releaseLease(leaseId: string): void {
    this.#leases.get(leaseId)?.lease.release()
    this.#leases.delete(leaseId)
  }

  #expireLeases(): void {
    const now = Date.now()
    for (const [id, held] of this.#leases) {
      if (held.expiresAt > now) continue
      this.#leases.delete(id)
      held.lease.release()
    }
    // Forgotten without a refund: the admissions of an ingress node that died may have been used.
    for (const [id, held] of this.#grants) if (held.expiresAt <= now) this.#grants.delete(id)
  }
}
