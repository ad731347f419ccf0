import type {
  Decision,
  MemoryLedger,
  ScopeLimit,
  SharedAllowance,
  SharedCheck,
  SharedHold,
} from '@fairlane/limits'
import type { AdmissionRefusal, Ticket } from '@fairlane/protocol'
import type { GateVerdict, QueuedTicket } from '@fairlane/scheduler'
import type { AdaptiveLanes } from './adaptive-lanes.ts'
import type { AllowanceWaiters } from './allowance-waiters.ts'
import type { CheckpointBook } from './checkpoint-book.ts'
import type { PartitionHost } from './partition-hosts.ts'
import type { Pending } from './pending.ts'
import { ledgerRefusal, sharedRefusal } from './refusals.ts'
import type { TicketPolicy } from './ticket-policy.ts'

/** A ticket that may go: its in-memory decision and what it holds of the shared scopes. */
export interface Granted {
  readonly decision: Decision & { allowed: true }
  readonly hold: SharedHold | undefined
}

/** A refusal's scope decides how much of the queue it stops. */
export function levelOf(refusedBy: string): 'lane' | 'workspace' | 'partition' {
  if (refusedBy === 'key' || refusedBy === 'client' || refusedBy === 'upstream') return 'lane'
  if (refusedBy === 'workspace') return 'workspace'
  return 'partition'
}

/**
 * Decides whether a ticket may go now, in this order: the partition's headroom, what its
 * lane learned from the upstream, the shared allowance, then the in-memory ledger, which
 * takes from every scope only when all pass.
 */
export class LedgerGate {
  readonly #ledger: MemoryLedger
  readonly #now: () => number
  readonly #shared: SharedAllowance | undefined
  readonly #lanes: AdaptiveLanes
  readonly #waiters: AllowanceWaiters<Pending>
  readonly #book: CheckpointBook

  constructor(options: {
    ledger: MemoryLedger
    now: () => number
    shared: SharedAllowance | undefined
    lanes: AdaptiveLanes
    waiters: AllowanceWaiters<Pending>
    book: CheckpointBook
  }) {
    this.#ledger = options.ledger
    this.#now = options.now
    this.#shared = options.shared
    this.#lanes = options.lanes
    this.#waiters = options.waiters
    this.#book = options.book
  }

  /** The scheduler's gate for a queued ticket; what it decided is kept on the ticket. */
  verdict(queued: QueuedTicket<Pending>): GateVerdict {
    const pending = queued.payload
    const lane = pending.policy.identity.lane
    if (pending.host.headroom.holdsBack(lane)) return { go: false, level: 'lane' }
    const learned = this.#lanes.learned(pending.policy, queued.deadline)
    if (learned && 'until' in learned) {
      if (learned.refusal) {
        pending.decision = learned.refusal
        return { go: false, reject: true }
      }
      return { go: false, level: 'lane', until: learned.until }
    }
    const shared = pending.policy.sharedScopes
    let fallback: readonly ScopeLimit[] = []
    if (this.#shared && shared?.length) {
      const check = this.#shared.check(shared, queued.cost, pending.ticket.cents)
      if (!check.ok) {
        if (check.final) {
          pending.sharedRefusal = check
          return { go: false, reject: true }
        }
        this.#waiters.laneWaits(
          check.scopeId,
          pending.host,
          lane,
          pending.policy.identity.workspace,
        )
        return { go: false, level: levelOf(check.refusedBy) }
      }
      fallback = check.fallback
    }
    const scopes = pending.policy.scopes
    const extra = learned ? [...fallback, learned.scope] : fallback
    const decision = this.#ledger.decide(
      extra.length ? [...scopes, ...extra] : scopes,
      queued.cost,
      pending.ticket.cents,
    )
    pending.decision = decision
    if (decision.allowed) {
      if (this.#shared && shared?.length)
        pending.hold = this.#shared.take(shared, queued.cost, pending.ticket.cents)
      this.#book.touched(pending.policy.partition, scopes)
      return { go: true }
    }
    if (decision.impossible) return { go: false, reject: true }
    if (decision.reason === 'concurrency') return { go: false, level: levelOf(decision.refusedBy) }
    const until = this.#now() + decision.retryAfterMs
    // Waiting past the deadline would only turn a clear 429 into a late 503.
    if (until > queued.deadline) return { go: false, reject: true }
    return { go: false, level: levelOf(decision.refusedBy), until }
  }

  /**
   * `verdict`'s checks for a ticket that has not queued and spends no shared scope, in the
   * same order: its decision when every limit allows it now, undefined otherwise (the queue
   * then decides it; a refused decision took nothing).
   */
  atOnce(
    ticket: Ticket,
    policy: TicketPolicy,
    host: PartitionHost<Pending>,
    deadline: number,
  ): (Decision & { allowed: true }) | undefined {
    if (host.headroom.holdsBack(policy.identity.lane)) return undefined
    const learned = this.#lanes.learned(policy, deadline)
    if (learned && 'until' in learned) return undefined
    const scopes = policy.scopes
    const decision = this.#ledger.decide(
      learned ? [...scopes, learned.scope] : scopes,
      ticket.cost,
      ticket.cents,
    )
    if (!decision.allowed) return undefined
    this.#book.touched(policy.partition, scopes)
    return decision
  }

  /**
   * A tier that does not queue: the ledger's answer is final. Only a shared scope's first
   * batch is waited for (one ledger round trip), never a limit.
   */
  async decideNow(
    ticket: Ticket,
    policy: TicketPolicy,
    signal?: AbortSignal,
  ): Promise<Granted | AdmissionRefusal> {
    const shared = policy.sharedScopes ?? []
    let check: SharedCheck | undefined
    for (let tries = 0; this.#shared && shared.length > 0; tries++) {
      check = this.#shared.check(shared, ticket.cost, ticket.cents)
      if (check.ok || check.final || check.retryAfterMs !== undefined) break
      if (tries === 1 || signal?.aborted) break
      await this.#waiters.nextChange(check.scopeId)
    }
    if (check && !check.ok) return sharedRefusal(check, 'rate_limited', [])
    const learned = this.#lanes.learned(policy, this.#now())
    // Its deadline is now, so a lane the upstream blocks always comes with its refusal.
    if (learned && 'until' in learned)
      return ledgerRefusal(learned.refusal as Decision & { allowed: false })
    const fallback = check?.ok ? check.fallback : []
    const extra = learned ? [...fallback, learned.scope] : fallback
    const decision = this.#ledger.decide(
      extra.length ? [...policy.scopes, ...extra] : policy.scopes,
      ticket.cost,
      ticket.cents,
    )
    if (!decision.allowed) return ledgerRefusal(decision)
    const hold = shared.length ? this.#shared?.take(shared, ticket.cost, ticket.cents) : undefined
    this.#book.touched(policy.partition, policy.scopes)
    return { decision, hold }
  }

  /** The rate-limit views of an admitted ticket: its in-memory scopes', then its shared ones'. */
  views(decision: Decision, policy: TicketPolicy): Decision['views'] {
    if (!this.#shared || !policy.sharedScopes?.length) return decision.views
    return [...decision.views, ...this.#shared.views(policy.sharedScopes)]
  }
}
