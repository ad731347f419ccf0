import type { RateLimitView } from './rate-limit-headers.ts'
import type { Ticket } from './ticket.ts'

/**
 * Items of a shard batch (`fairlane.v4.shard.<n>`, see wire-batch.ts), between ingress nodes
 * and the queue actor that holds the shard's lease. JSON: small, and readable with `nats sub`
 * when operating a cluster.
 */
export type ShardMessage =
  /**
   * Asks for admission; the answers (progress, then an AdmissionReply) go to the batch's
   * `replyTo`, tagged with `token`, which ingress chooses per submission.
   */
  | {
      readonly kind: 'ticket'
      readonly token: string
      readonly ticket: Ticket
      /** Admissions of the same lane the ingress node would like lent with the answer. */
      readonly want?: number
      /** Concurrency slots it would like with them (all it may use, when absent). */
      readonly slots?: number
    }
  /** Asks for a lane's next leased share ahead of need, from a node holding one; answered by a ShareReply. */
  | {
      readonly kind: 'share'
      readonly token: string
      readonly ticket: Ticket
      readonly want: number
      readonly slots?: number
    }
  /**
   * Lent concurrency slots (ShareGrant.slots), by lease id: `used` ones are held by the
   * ingress node (keep them), `unused` ones are given back (free them).
   */
  | {
      readonly kind: 'settle'
      readonly used: readonly string[]
      readonly unused: readonly string[]
    }
  /**
   * Where a grant's admissions stand at its ingress node: `unused` of them were never handed
   * out and are given back now (their units refunded); `open` while the node may still hand
   * some out or requests hold some (keep the grant), false once nothing of it is left there.
   */
  | {
      readonly kind: 'grant-state'
      readonly grant: string
      readonly unused: number
      readonly open: boolean
    }
  /**
   * A request admitted from grant `grant` ended with news for the owner: a real cost to
   * settle, or what the upstream said. One that ended with none sends nothing.
   */
  | {
      readonly kind: 'grant-used'
      readonly grant: string
      readonly cost?: number
      readonly cents?: number
      readonly upstream?: LaneSignals
    }
  /** The admitted request completed: release its concurrency, charge its real cost. */
  | {
      readonly kind: 'done'
      readonly leaseId: string
      readonly cost?: number
      readonly cents?: number
      readonly upstream?: LaneSignals
    }
  /** The client left while its ticket waited. */
  | { readonly kind: 'cancel'; readonly requestId: string }

/**
 * What the upstream said about its limits in the answer to an admitted request, for the
 * lane to adopt (adaptive lane limits). Times are relative: nodes' clocks differ.
 */
export interface LaneSignals {
  readonly status: number
  /** The upstream asked not to be called again for this long (Retry-After, a spent limit's reset). */
  readonly retryAfterMs?: number
  /** Requests per second the upstream states it allows. */
  readonly rps?: number
  /** Requests in flight the upstream wants at most (X-Fairlane-Max-Concurrent). */
  readonly maxConcurrent?: number
}

/**
 * Whether the upstream said anything a lane may adopt: a refusal or a limit. Most answers say
 * nothing (a 200 without limit headers), and their `done` carries no news for the owner.
 */
export function saysLimits(word: LaneSignals): boolean {
  return (
    word.status === 429 ||
    word.retryAfterMs !== undefined ||
    word.rps !== undefined ||
    word.maxConcurrent !== undefined
  )
}

/** A ticket the actor refused, the same in process and on the wire. */
export interface AdmissionRefusal {
  readonly allowed: false
  /** `cancelled`: the client went away while waiting; nobody is left to answer. */
  readonly code:
    'rate_limited' | 'queue_full' | 'queue_timeout' | 'cancelled' | 'cluster_unavailable'
  /** The scope or queue bound that refused: key, workspace, target, global, client, lane, partition, node. */
  readonly refusedBy: string
  /** `cost`: the request costs more than the refusing limit allows at once, so it never fits. */
  /** `ledger`: a shared limit's ledger is unreachable and its onLedgerDown policy is closed. */
  readonly reason: 'rate' | 'concurrency' | 'bound' | 'deadline' | 'client' | 'cost' | 'ledger'
  readonly retryAfterMs: number
  readonly views: readonly RateLimitView[]
}

export type AdmissionReply =
  | {
      readonly allowed: true
      readonly leaseId: string
      readonly views: readonly RateLimitView[]
      readonly waitedMs: number
      /** A leased share of the same lane, when the ticket asked for one and the owner lends it. */
      readonly grant?: ShareGrant
    }
  | AdmissionRefusal

/**
 * A leased share (docs/cluster.md#leased-shares): admissions of one lane an owner decided
 * ahead and lends an ingress node, to hand out to its requests without asking again. They
 * travel as a count: what each request needs of one is the limits it leaves.
 */
export interface ShareGrant {
  /** The partition the lane lives in: a revocation names it. */
  readonly partition: string
  /** How long the admissions may be handed out, counted from the grant's arrival. */
  readonly ttlMs: number
  /** Names the grant at its owner, for its `grant-state` and `grant-used` items. */
  readonly id: string
  /** Admissions lent; each spent the lane's rate and window units; one is handed to each request. */
  readonly admissions: number
  /**
   * The limits as the first admission left them, and as the last did (absent when they are
   * the same): the admissions between, decided at the same moment, fall in line between.
   */
  readonly views: readonly RateLimitView[]
  readonly lastViews?: readonly RateLimitView[]
  /**
   * Lease ids of concurrency slots lent with the admissions, when the lane has a
   * concurrency limit: a request needs one besides its admission, and gives it back to the
   * grant (not the owner) when it ends, so that the next request reuses it.
   */
  readonly slots?: readonly string[]
}

/** The answer to a `share` item: null when nothing is lent this time. */
interface ShareReply {
  readonly grant: ShareGrant | null
}

/**
 * The owner has a waiting ticket in `revoke` (a partition): every share of it goes back now.
 * Sent to each ingress node holding one, with the token `""`.
 */
interface ShareRevocation {
  readonly revoke: string
}

/**
 * What the owner says about a ticket before its answer: `waiting` (sent every few seconds
 * while the ticket queues, so ingress can tell a long wait from a dead owner) and `moved`
 * (the owner gave the shard up while the ticket waited: ingress resubmits it at once).
 */
export interface TicketProgress {
  readonly progress: 'waiting' | 'moved'
}

/** What an ingress node may hear about a ticket: the `reply` of an item of a reply batch. */
export type TicketReply = AdmissionReply | TicketProgress | ShareReply | ShareRevocation

/** The shard subjects carry the wire version, so nodes of two versions never read each other's. */
const SHARD_SUBJECT_PREFIX = 'fairlane.v4.shard.'

export function shardSubject(shard: number): string {
  return SHARD_SUBJECT_PREFIX + shard
}

/**
 * The subject of the previous wire version (one JSON ShardMessage per message, answered on the
 * message's reply subject), still listened to by an owner only to refuse what arrives on it.
 */
export function v1ShardSubject(shard: number): string {
  return 'fairlane.v1.shard.' + shard
}

/**
 * The shard of a target partition: FNV-1a of `target#partition`, mod the cluster's shard
 * count. Stable across nodes and versions: every node must agree on it.
 */
export function shardOf(target: string, partition: number, shards: number): number {
  return shardOfPartition(`${target}#${partition}`, shards)
}

/** The same, from the partition's key `target#partition`. */
export function shardOfPartition(text: string, shards: number): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % shards
}
