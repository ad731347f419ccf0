import type { RateLimitView } from './rate-limit-headers.ts'
import type { Ticket } from './ticket.ts'
import type { AdmissionRefusal, LaneSignals } from './wire.ts'

/** Held by a request from admission until its response is done. */
export interface AdmissionLease {
  /**
   * Gives back concurrency. `cost` is the real cost when it became known only from the
   * response; units beyond the ticket's cost are charged then. `upstream` is what the
   * upstream said about its limits, for the lane to adopt.
   */
  release(outcome?: LeaseOutcome): void
}

export interface LeaseOutcome {
  readonly cost?: number
  /** The real price in cents, settled against the ticket's like `cost`. */
  readonly cents?: number
  readonly upstream?: LaneSignals
}

export type Admission =
  | {
      readonly allowed: true
      readonly lease: AdmissionLease
      readonly views: readonly RateLimitView[]
      /** Time spent waiting in the lane. */
      readonly waitedMs: number
    }
  | AdmissionRefusal

/**
 * Admissions an owner decided ahead of their requests and lent (a leased share), settled as
 * a whole: they hold no concurrency, so a request that used one owes the owner nothing
 * unless it has news.
 */
export interface LentAdmissions {
  /** `count` of them were never handed out: their rate and window units are refunded. */
  refund(count: number): void
  /** A request admitted by one of them ended with news: its real cost, what the upstream said. */
  ended(outcome: LeaseOutcome): void
}

/**
 * What an owner lends for a leased share: admissions that each spent the lane's rate and
 * window units, and, when the lane has a concurrency limit, slots its requests hold one
 * each and hand on to the next (absent when it has none).
 */
export interface PrefetchedShare {
  readonly partition: string
  /** How many admissions were decided; 0 for none. */
  readonly admissions: number
  /** The limits as the first admission left them, and as the last did. */
  readonly views: readonly RateLimitView[]
  readonly lastViews: readonly RateLimitView[]
  /** Present when `admissions` is above 0. */
  readonly lent?: LentAdmissions
  readonly slots?: readonly AdmissionLease[]
}

/** Whatever owns a lane's partition and decides on its tickets. */
export interface Actor {
  admit(ticket: Ticket, signal?: AbortSignal): Promise<Admission>
  /**
   * Up to `count` admissions of the ticket's kind decided now, for a leased share; none
   * when its lane or partition may not lend (docs/cluster.md#leased-shares). `topUp`: the
   * asker holds a grant of the lane, slots included, and asks for more ahead of need.
   * `slots`: the most concurrency slots it wants with them (as many as admissions, when
   * absent; 0 when it holds enough).
   */
  prefetch?(ticket: Ticket, count: number, topUp?: boolean, slots?: number): PrefetchedShare
}

/**
 * How ingress reaches the actor that owns a ticket's lane: a function call in embedded mode,
 * NATS request/reply in a cluster. Code above this interface is the same in both.
 */
export interface Transport {
  /** Resolves when the ticket may go or is refused; aborting `signal` cancels a waiting ticket. */
  submit(ticket: Ticket, signal?: AbortSignal): Promise<Admission>
  close(): Promise<void>
}
