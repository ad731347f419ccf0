import { setTimeout as sleep } from 'node:timers/promises'
import {
  createInbox,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node'
import {
  FairlaneError,
  shardSubject,
  type AdmissionReply,
  type ShardMessage,
  type Ticket,
  type TicketReply,
} from '@fairlane/protocol'
import type { Admission, Transport } from '@fairlane/protocol'

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
 * Ingress side of the cluster: a ticket is published on its shard's subject with a reply
 * subject of this node's inbox, and answered by whichever node holds the shard's lease.
 * Ingress needs no membership table. Unlike a plain request, the ticket's owner is watched:
 * it reports `waiting` while the ticket queues, so a silent owner is a dead one and the
 * ticket goes again, to the shard's next owner.
 */
export class NatsTransport implements Transport {
  readonly #nc: NatsConnection
  readonly #shardFor: (ticket: Ticket) => number
  readonly #timeoutMs: number
  readonly #retryForMs: number
  readonly #silenceMs: number
  readonly #inbox = createInbox()
  readonly #attempts = new Map<string, Attempt>()
  readonly #subscription: Subscription
  #next = 0

  constructor(options: NatsTransportOptions) {
    this.#nc = options.nc
    this.#shardFor = options.shardFor
    this.#timeoutMs = options.requestTimeoutMs
    this.#retryForMs = options.retryForMs ?? 10_000
    this.#silenceMs = options.silenceMs ?? 3_000
    // One subscription for every reply, as nats.js muxes its own requests.
    this.#subscription = this.#nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (!err) this.#reply(msg)
      },
    })
  }

  async submit(ticket: Ticket, signal?: AbortSignal): Promise<Admission> {
    const subject = shardSubject(this.#shardFor(ticket))
    // The owner tells tickets apart by this id: the request id comes from the client and
    // two clients may send the same one. Resubmissions keep it, so a copy replaces the first.
    const wire = { ...ticket, requestId: `${ticket.requestId}~${this.#inbox}.${++this.#next}` }
    const onAbort = () => this.#send(subject, { kind: 'cancel', requestId: wire.requestId })
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const reply = await this.#admission(subject, wire, signal)
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
              ...(outcome?.upstream ? { upstream: outcome.upstream } : {}),
            })
          },
        },
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async close(): Promise<void> {
    this.#subscription.unsubscribe()
  }

  /** Sends the ticket until an owner answers, resubmitting on no responder, a move or silence. */
  async #admission(subject: string, ticket: Ticket, signal?: AbortSignal): Promise<AdmissionReply> {
    const giveUpAt = Date.now() + this.#timeoutMs
    const payload = JSON.stringify({ kind: 'ticket', ticket } satisfies ShardMessage)
    // The retry window counts from the first failure, not from the start: a ticket that
    // waited 20 s in a lane whose owner then died deserves the same chance as a new one.
    let failingSince: number | undefined
    for (let backoff = 25; ;) {
      // A client that left during a backoff gets no copy queued for nobody.
      if (signal?.aborted) throw noOwner(subject, 'the client left')
      const outcome = await this.#attempt(subject, payload, giveUpAt)
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
    payload: string,
    giveUpAt: number,
  ): Promise<AdmissionReply | 'no-responders' | 'moved' | 'silent' | 'timeout'> {
    const token = String(++this.#next)
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
        } else finish(reply)
      })
      listen()
      try {
        this.#nc.publish(subject, payload, { reply: `${this.#inbox}.${token}` })
      } catch {
        finish('no-responders')
      }
    })
  }

  /**
   * A ticket given up on may still be admitted by an owner that was only slow: its slot is
   * given back at once. Listening stops after the longest wait a ticket can have.
   */
  #abandon(token: string, subject: string): void {
    const forget = setTimeout(() => this.#attempts.delete(token), this.#timeoutMs)
    forget.unref()
    this.#attempts.set(token, (reply) => {
      if (reply === 'no-responders' || 'progress' in reply) return
      this.#attempts.delete(token)
      clearTimeout(forget)
      if (reply.allowed) this.#send(subject, { kind: 'done', leaseId: reply.leaseId })
    })
  }

  #reply(msg: Msg): void {
    const token = msg.subject.slice(this.#inbox.length + 1)
    const attempt = this.#attempts.get(token)
    if (!attempt) return
    if (msg.headers?.code === 503) {
      attempt('no-responders')
      return
    }
    try {
      attempt(msg.json<TicketReply>())
    } catch {
      // Not ours to read; the silence timer covers a garbled answer.
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
