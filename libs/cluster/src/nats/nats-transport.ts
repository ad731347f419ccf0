import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Span, Tracer } from '@opentelemetry/api'
import {
  createInbox,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node'
import {
  FairlaneError,
  decodeReplyBatch,
  saysLimits,
  encodeShardBatch,
  shardSubject,
  type AdmissionReply,
  type ShardMessage,
  type ShareGrant,
  type Ticket,
  type TicketReply,
  type WireRefusal,
} from '@fairlane/protocol'
import type { Admission, AdmissionLease, LeaseOutcome, Transport } from '@fairlane/protocol'
import { Batcher, flushAfter } from '../batcher.ts'
import { LeasedShares, type GrantState, type LocalAdmission } from '../leased-shares.ts'
import type { BatchSettings } from './batch-settings.ts'
import { TicketTracing } from './ticket-tracing.ts'

/** How long closing waits for the answers to share asks under way (a round trip or two). */
const CLOSE_ASK_WAIT_MS = 1_000

export interface NatsTransportOptions {
  readonly nc: NatsConnection
  /** The shard that owns a ticket's lane: shardOf(target, partition, shards). */
  readonly shardFor: (ticket: Ticket) => number
  /** Longest a ticket may take in all, resubmissions included: the longest tier wait plus a margin. */
  readonly requestTimeoutMs: number
  /**
   * How long to keep resubmitting a ticket that meets no responder or lost its owner (a
   * shard between two owners, a node that died before its lease expired): a short delay
   * instead of an error. At least the shard lease TTL.
   */
  readonly retryForMs?: number
  /**
   * Silence after which the owner of a waiting ticket is taken for dead and the ticket is
   * resubmitted; owners report `waiting` more often than this (see ShardServer).
   */
  readonly silenceMs?: number
  /** How tickets, `done`s and `cancel`s to one shard are gathered into one message. */
  readonly batch?: BatchSettings
  /** Items in each batch sent to a shard. */
  readonly onBatchSent?: (items: number) => void
  /**
   * Of each admitted ticket, the time from handing it to the batcher to its admission, less
   * the time its owner says it waited in its lane: batching, NATS both ways, the owner's
   * decision (a shared scope's Redis reservation included).
   */
  readonly onRoundTrip?: (ms: number) => void
  /** A reply batch was not read: another wire version sent it, or it was garbled. */
  readonly onRefused?: (refusal: WireRefusal) => void
  /**
   * Leased shares (docs/cluster.md#leased-shares): lanes with demand ask their owner for
   * admissions to hand out here. Off when absent.
   */
  readonly shares?: { readonly max: number; readonly ttlMs: number }
  /** Each admission: `local` from a leased share, `owner` answered over NATS. */
  readonly onAdmission?: (path: 'local' | 'owner') => void
  /**
   * Traces: a ticket that carries a context (Ticket.trace) gets a producer span per
   * publication, and carries that span's context to its owner. Off when absent.
   */
  readonly tracer?: Tracer
}

/** Tickets a leased share may stand for: their limits are the lane's alone. */
function laneOf(ticket: Ticket): string | undefined {
  if (
    ticket.clientPolicies ||
    ticket.cost !== 1 ||
    ticket.cents !== undefined ||
    // A ticket at a tier below its key's has a lane of its own.
    ticket.tier !== undefined
  )
    return undefined
  return `${ticket.target}\n${ticket.workspace}\n${ticket.keyId}`
}

/**
 * Whether a request's end tells an owner anything: a real cost to settle, or something
 * from the upstream for the lane to adopt. A request admitted from a grant that ends
 * without news owes its owner no word: its admission holds no concurrency there (a lent slot
 * goes back to its grant, not to the owner).
 */
function hasNews(outcome: LeaseOutcome | undefined): outcome is LeaseOutcome {
  return (
    outcome?.cost !== undefined ||
    outcome?.cents !== undefined ||
    (outcome?.upstream !== undefined && saysLimits(outcome.upstream))
  )
}

function usedOf(grant: string, outcome: LeaseOutcome): ShardMessage {
  return {
    kind: 'grant-used',
    grant,
    ...(outcome.cost !== undefined ? { cost: outcome.cost } : {}),
    ...(outcome.cents !== undefined ? { cents: outcome.cents } : {}),
    ...(outcome.upstream ? { upstream: outcome.upstream } : {}),
  }
}

function doneOf(leaseId: string, outcome: LeaseOutcome | undefined): ShardMessage {
  return {
    kind: 'done',
    leaseId,
    ...(outcome?.cost !== undefined ? { cost: outcome.cost } : {}),
    ...(outcome?.cents !== undefined ? { cents: outcome.cents } : {}),
    ...(outcome?.upstream ? { upstream: outcome.upstream } : {}),
  }
}

/** The transport gave up: no queue actor answered in time (503, retry in a second). */
function noOwner(subject: string, why: string): FairlaneError {
  return new FairlaneError(
    'cluster_unavailable',
    'queue',
    `no queue actor answered on ${subject}: ${why}`,
    { headers: { 'retry-after': '1' } },
  )
}

type Attempt = (outcome: TicketReply | 'no-responders') => void

/**
 * Ingress side of the cluster: a ticket is published on its shard's subject, in a batch
 * with the others this node has for the shard, and answered by whichever node holds the
 * shard's lease, in batches sent to this node's inbox. Ingress needs no membership table.
 * Unlike a plain request, the ticket's owner is watched: it reports `waiting` while the
 * ticket queues, so a silent owner is a dead one and the ticket goes again, to the shard's
 * next owner.
 *
 * A batch that carries tickets is published with a reply subject of its own (`<inbox>.b.<n>`)
 * that the owner never uses: it is there for NATS, which answers it with a 503 when nobody
 * serves the shard, and then every ticket of the batch is sent again as if alone.
 */
export class NatsTransport implements Transport {
  readonly #nc: NatsConnection
  readonly #shardFor: (ticket: Ticket) => number
  readonly #timeoutMs: number
  readonly #retryForMs: number
  readonly #silenceMs: number
  readonly #onBatchSent: ((items: number) => void) | undefined
  readonly #onRoundTrip: ((ms: number) => void) | undefined
  readonly #onRefused: ((refusal: WireRefusal) => void) | undefined
  readonly #inbox = createInbox()
  /** Where owners send their reply batches. */
  readonly #replyTo = `${this.#inbox}.r`
  readonly #attempts = new Map<string, Attempt>()
  /** Tokens of share asks not answered yet. */
  readonly #asks = new Set<string>()
  readonly #subscription: Subscription
  readonly #batches: Batcher<ShardMessage>
  /**
   * Word of grants that gives nothing back (still open, or closed with everything used),
   * gathered for a quarter of a share's TTL, as often as the sweep: at a few hundred
   * requests a second a grant closes every few turns of the event loop, and a NATS message
   * each was what nats-server and the owner paid most for.
   */
  readonly #quietWord: Batcher<ShardMessage> | undefined
  /**
   * The tickets of batches sent lately, by batch number, for a no-responders notice. It comes
   * within a round trip; two generations, turned every silenceMs, keep the map small.
   */
  #sentBatches = new Map<string, string[]>()
  #olderBatches = new Map<string, string[]>()
  readonly #turn: NodeJS.Timeout
  readonly #shares: LeasedShares | undefined
  readonly #shareSweep: NodeJS.Timeout | undefined
  readonly #onAdmission: NatsTransportOptions['onAdmission']
  readonly #tracing: TicketTracing | undefined
  /** Producer spans of tickets waiting in the batcher, by token: they end when it publishes. */
  readonly #producing = new Map<string, Span>()
  #next = 0
  #nextBatch = 0

  constructor(options: NatsTransportOptions) {
    this.#nc = options.nc
    this.#shardFor = options.shardFor
    this.#timeoutMs = options.requestTimeoutMs
    this.#retryForMs = options.retryForMs ?? 10_000
    this.#silenceMs = options.silenceMs ?? 3_000
    this.#onBatchSent = options.onBatchSent
    this.#onRoundTrip = options.onRoundTrip
    this.#onRefused = options.onRefused
    this.#batches = new Batcher({
      maxItems: options.batch?.maxItems ?? 64,
      schedule: flushAfter(options.batch?.flushDelayMs ?? 0),
      send: (subject, items) => this.#publish(subject, items),
    })
    this.#turn = setInterval(() => {
      this.#olderBatches = this.#sentBatches
      this.#sentBatches = new Map()
    }, this.#silenceMs)
    this.#turn.unref()
    this.#onAdmission = options.onAdmission
    this.#tracing = options.tracer ? new TicketTracing(options.tracer) : undefined
    const shares = options.shares
    if (shares) {
      this.#shares = new LeasedShares({
        now: () => performance.now(),
        max: shares.max,
        grantState: (owner, state) => this.#grantState(owner, state),
        settleSlots: (owner, used, unused) =>
          this.#batches.add(owner, { kind: 'settle', used, unused }),
        slotDone: (owner, slot) => this.#batches.add(owner, { kind: 'done', leaseId: slot }),
      })
      this.#shareSweep = setInterval(() => this.#shares?.sweep(), shares.ttlMs / 4)
      this.#shareSweep.unref()
      this.#quietWord = new Batcher({
        maxItems: options.batch?.maxItems ?? 64,
        schedule: flushAfter(shares.ttlMs / 4),
        send: (subject, items) => this.#publish(subject, items),
      })
    }
    // One subscription for every reply batch and no-responders notice.
    this.#subscription = this.#nc.subscribe(`${this.#inbox}.>`, {
      callback: (err, msg) => {
        if (!err) this.#receive(msg)
      },
    })
  }

  async submit(ticket: Ticket, signal?: AbortSignal): Promise<Admission> {
    const lane = this.#shares ? laneOf(ticket) : undefined
    let want = 0
    let slots = 0
    if (lane && this.#shares) {
      const local = this.#shares.take(lane)
      want = this.#shares.wanted(lane)
      if (want > 0) slots = this.#shares.slotsWanted(lane)
      if (local) {
        // No shard to compute: the share's owner is where its `done` and next ask go.
        if (want > 0) this.#askShare(local.owner, ticket, lane, want, slots)
        this.#onAdmission?.('local')
        return { allowed: true, views: local.views, waitedMs: 0, lease: this.#localLease(local) }
      }
    }
    const subject = shardSubject(this.#shardFor(ticket))
    // The owner tells tickets apart by this id: the request id comes from the client and
    // two clients may send the same one. Resubmissions keep it, so a copy replaces the first.
    const wire = { ...ticket, requestId: `${ticket.requestId}~${this.#inbox}.${++this.#next}` }
    const onAbort = () => this.#batches.add(subject, { kind: 'cancel', requestId: wire.requestId })
    signal?.addEventListener('abort', onAbort, { once: true })
    let granted = false
    try {
      const reply = await this.#admission(subject, wire, signal, want, slots)
      if (!reply.allowed) return reply
      this.#onAdmission?.('owner')
      if (lane && reply.grant) {
        this.#shares?.grant(lane, subject, reply.grant)
        granted = true
      }
      return {
        allowed: true,
        views: reply.views,
        waitedMs: reply.waitedMs,
        lease: this.#leaseOf(subject, reply.leaseId),
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      if (lane && want > 0 && !granted) this.#shares?.refused(lane)
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#shareSweep)
    // What this node was lent goes back before the last batches leave, and so does what
    // it asked for and has not heard of yet: an owner cannot tell a grant never received
    // from one handed out, so it would keep those units spent.
    this.#shares?.close()
    await this.#asksAnswered()
    this.#quietWord?.close()
    this.#batches.close()
    clearInterval(this.#turn)
    this.#subscription.unsubscribe()
  }

  /** A request admitted from a leased share: the slot it held, if any, goes on to the next. */
  #localLease(local: LocalAdmission): AdmissionLease {
    let released = false
    return {
      release: (outcome) => {
        if (released) return
        released = true
        if (hasNews(outcome)) this.#batches.add(local.owner, usedOf(local.grant, outcome))
        local.end()
        local.slot?.release()
      },
    }
  }

  /** What is given back goes at once: a revoked grant's units are for the queue. */
  #grantState(owner: string, { grant, unused, open }: GrantState): void {
    const batcher = unused > 0 ? this.#batches : (this.#quietWord ?? this.#batches)
    batcher.add(owner, { kind: 'grant-state', grant, unused, open })
  }

  /** Held by an admitted request; its `done` goes to the shard's owner with the next batch. */
  #leaseOf(subject: string, leaseId: string): AdmissionLease {
    let released = false
    return {
      release: (outcome) => {
        if (released) return
        released = true
        this.#batches.add(subject, doneOf(leaseId, outcome))
      },
    }
  }

  /** Waits (a little) for the answers to share asks under way, so their grants go back. */
  async #asksAnswered(): Promise<void> {
    if (this.#asks.size === 0) return
    const waited = setTimeout(() => this.#asks.clear(), CLOSE_ASK_WAIT_MS)
    while (this.#asks.size > 0) await sleep(5)
    clearTimeout(waited)
  }

  /**
   * Asks the lane's owner for its next share while the lane still holds one, so no request
   * waits for it. Nobody answering in a silence's time counts as a refusal.
   */
  #askShare(subject: string, ticket: Ticket, lane: string, want: number, slots: number): void {
    const token = String(++this.#next)
    this.#asks.add(token)
    const forget = setTimeout(() => {
      this.#asks.delete(token)
      if (!this.#attempts.has(token)) return
      this.#shares?.refused(lane)
      this.#giveBackLate(token, subject)
    }, this.#silenceMs)
    forget.unref()
    this.#attempts.set(token, (reply) => {
      this.#attempts.delete(token)
      this.#asks.delete(token)
      clearTimeout(forget)
      const grant = reply !== 'no-responders' && 'grant' in reply ? reply.grant : undefined
      if (grant) this.#shares?.grant(lane, subject, grant)
      else this.#shares?.refused(lane)
    })
    this.#batches.add(subject, { kind: 'share', token, ticket, want, slots })
  }

  /** Sends the ticket until an owner answers, resubmitting on no responder, a move or silence. */
  async #admission(
    subject: string,
    ticket: Ticket,
    signal: AbortSignal | undefined,
    want: number,
    slots: number,
  ): Promise<AdmissionReply> {
    const giveUpAt = Date.now() + this.#timeoutMs
    // The retry window counts from the first failure, not from the start: a ticket that
    // waited 20 s in a lane whose owner then died deserves the same chance as a new one.
    let failingSince: number | undefined
    for (let backoff = 25; ;) {
      // A client that left during a backoff gets no copy queued for nobody.
      if (signal?.aborted) throw noOwner(subject, 'the client left')
      const outcome = await this.#attempt(subject, ticket, giveUpAt, want, slots)
      if (typeof outcome === 'object') return outcome
      if (signal?.aborted) throw noOwner(subject, 'the client left')
      const now = Date.now()
      failingSince ??= now
      const retryUntil = Math.min(failingSince + this.#retryForMs, giveUpAt)
      if (outcome === 'timeout' || now >= retryUntil) {
        throw noOwner(subject, outcome === 'timeout' ? 'timed out' : outcome)
      }
      if (outcome !== 'moved') {
        await sleep(Math.min(backoff, retryUntil - now))
        backoff = Math.min(backoff * 2, 500)
      }
    }
  }

  /** One publication of the ticket; resolves with the answer or why there was none. */
  #attempt(
    subject: string,
    ticket: Ticket,
    giveUpAt: number,
    want: number,
    slots: number,
  ): Promise<AdmissionReply | 'no-responders' | 'moved' | 'silent' | 'timeout'> {
    const token = String(++this.#next)
    const sentAt = performance.now()
    return new Promise((resolve) => {
      let silence: NodeJS.Timeout | undefined
      const finish = (
        outcome: AdmissionReply | 'no-responders' | 'moved' | 'silent' | 'timeout',
      ) => {
        clearTimeout(silence)
        clearTimeout(deadline)
        if (outcome === 'silent' || outcome === 'timeout') this.#abandon(token, subject)
        else this.#attempts.delete(token)
        resolve(outcome)
      }
      const listen = () => {
        clearTimeout(silence)
        silence = setTimeout(() => finish('silent'), this.#silenceMs)
      }
      const deadline = setTimeout(() => finish('timeout'), Math.max(0, giveUpAt - Date.now()))
      this.#attempts.set(token, (reply) => {
        if (reply === 'no-responders') finish('no-responders')
        else if ('progress' in reply) {
          if (reply.progress === 'moved') finish('moved')
          else listen()
        } else if ('allowed' in reply) {
          if (reply.allowed) this.#onRoundTrip?.(performance.now() - sentAt - reply.waitedMs)
          finish(reply)
        }
      })
      listen()
      let sent = ticket
      if (this.#tracing && ticket.trace !== undefined) {
        const producing = this.#tracing.send(subject, ticket, ticket.trace)
        this.#producing.set(token, producing.span)
        sent = producing.ticket
      }
      this.#batches.add(subject, {
        kind: 'ticket',
        token,
        ticket: sent,
        ...(want > 0 ? { want, slots } : {}),
      })
    })
  }

  /**
   * A ticket given up on may still be admitted by an owner that was only slow: its slot is
   * given back at once.
   */
  #abandon(token: string, subject: string): void {
    this.#answeredLate(token, (reply) => {
      if (!('allowed' in reply)) return false
      if (reply.allowed) {
        this.#batches.add(subject, { kind: 'done', leaseId: reply.leaseId })
        if (reply.grant) this.#returnGrant(subject, reply.grant)
      }
      return true
    })
  }

  /**
   * A share ask given up on may still be answered by an owner that was only slow (a link
   * between regions): the grant goes straight back, or its admissions stay spent and its
   * slots taken until the owner's expiry.
   */
  #giveBackLate(token: string, subject: string): void {
    this.#answeredLate(token, (reply) => {
      if (!('grant' in reply)) return false
      if (reply.grant) this.#returnGrant(subject, reply.grant)
      return true
    })
  }

  /**
   * Listens for the late answer to something this node gave up on, for the longest wait a
   * ticket can have; `settle` takes each reply and says whether it was the answer.
   */
  #answeredLate(token: string, settle: (reply: TicketReply) => boolean): void {
    const forget = setTimeout(() => this.#attempts.delete(token), this.#timeoutMs)
    forget.unref()
    this.#attempts.set(token, (reply) => {
      if (reply === 'no-responders' || !settle(reply)) return
      this.#attempts.delete(token)
      clearTimeout(forget)
    })
  }

  /** A grant nobody here will hand out: all of it goes back. */
  #returnGrant(subject: string, grant: ShareGrant): void {
    this.#batches.add(subject, {
      kind: 'grant-state',
      grant: grant.id,
      unused: grant.admissions,
      open: false,
    })
    if (grant.slots?.length)
      this.#batches.add(subject, { kind: 'settle', used: [], unused: grant.slots })
  }

  #receive(msg: Msg): void {
    if (msg.subject === this.#replyTo) {
      const batch = decodeReplyBatch(msg.string())
      if ('refused' in batch) {
        // Not ours to read; the silence timer covers the tickets it may have answered.
        this.#onRefused?.(batch)
        return
      }
      for (const { token, reply } of batch.items) {
        if ('revoke' in reply) this.#shares?.revoke(reply.revoke)
        else this.#attempts.get(token)?.(reply)
      }
      return
    }
    if (msg.headers?.code !== 503) return
    const batch = msg.subject.slice(this.#inbox.length + 3)
    const tokens = this.#sentBatches.get(batch) ?? this.#olderBatches.get(batch)
    this.#sentBatches.delete(batch)
    this.#olderBatches.delete(batch)
    for (const token of tokens ?? []) this.#attempts.get(token)?.('no-responders')
  }

  #publish(subject: string, items: ShardMessage[]): void {
    const tokens: string[] = []
    for (const item of items) {
      if (item.kind === 'ticket' || item.kind === 'share') tokens.push(item.token)
    }
    let reply: string | undefined
    if (tokens.length > 0) {
      reply = `${this.#inbox}.b.${++this.#nextBatch}`
      this.#sentBatches.set(String(this.#nextBatch), tokens)
    }
    try {
      this.#nc.publish(
        subject,
        encodeShardBatch(reply && this.#replyTo, items),
        reply ? { reply } : undefined,
      )
      this.#onBatchSent?.(items.length)
      if (this.#producing.size > 0) this.#published(items, false)
    } catch {
      if (this.#producing.size > 0) this.#published(items, true)
      // The connection is closing. Its tickets go again (or give up) as if nobody listened;
      // a lost `done` is not a leak: the owner frees a lease nobody releases after its TTL.
      for (const token of tokens) this.#attempts.get(token)?.('no-responders')
    }
  }

  /** Ends the producer spans of the tickets of a batch: published, or `failed`. */
  #published(items: readonly ShardMessage[], failed: boolean): void {
    for (const item of items) {
      if (item.kind !== 'ticket') continue
      const span = this.#producing.get(item.token)
      if (!span) continue
      this.#producing.delete(item.token)
      this.#tracing?.sent(span, items.length, failed)
    }
  }
}
