import type { PartitionHost } from './partition-hosts.ts'

/** How long a ticket that does not queue waits for a shared scope's batch at most. */
export const NEXT_CHANGE_WAIT_MS = 1_000

interface WaitingLane<P> {
  readonly host: PartitionHost<P>
  readonly lane: string
  readonly workspace: string
}

/**
 * Lanes and tickets waiting for a shared scope's next batch from the ledger, by scope id,
 * woken when the shared allowance says that scope may pass again.
 */
export class AllowanceWaiters<P> {
  /** Lanes whose head waits for the scope, one entry per partition and lane. */
  readonly #lanes = new Map<string, Map<string, WaitingLane<P>>>()
  /** Tickets that do not queue, waiting for the scope's first batch. */
  readonly #tickets = new Map<string, Set<() => void>>()

  /** The lane's head waits for the scope: its scheduler lets it try again on the next change. */
  laneWaits(scopeId: string, host: PartitionHost<P>, lane: string, workspace: string): void {
    const key = `${host.key}\u0000${lane}`
    let lanes = this.#lanes.get(scopeId)
    if (!lanes) this.#lanes.set(scopeId, (lanes = new Map()))
    lanes.set(key, { host, lane, workspace })
  }

  /** Resolves at the scope's next change, or after NEXT_CHANGE_WAIT_MS. */
  nextChange(scopeId: string): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#tickets.get(scopeId)
      if (!waiters) this.#tickets.set(scopeId, (waiters = new Set()))
      const done = () => {
        clearTimeout(timer)
        waiters.delete(done)
        resolve()
      }
      // Bounded: a ledger that never answers turns into its onLedgerDown policy meanwhile.
      const timer = setTimeout(done, NEXT_CHANGE_WAIT_MS)
      waiters.add(done)
    })
  }

  /**
   * The scope may pass again: wakes the tickets that waited for it and releases the lanes in
   * their schedulers. Answers the hosts of those lanes, to pump.
   */
  changed(scopeId: string): ReadonlySet<PartitionHost<P>> {
    const waiters = this.#tickets.get(scopeId)
    if (waiters) {
      this.#tickets.delete(scopeId)
      for (const wake of waiters) wake()
    }
    const hosts = new Set<PartitionHost<P>>()
    const lanes = this.#lanes.get(scopeId)
    if (!lanes) return hosts
    this.#lanes.delete(scopeId)
    for (const { host, lane, workspace } of lanes.values()) {
      host.scheduler.released(lane, workspace)
      hosts.add(host)
    }
    return hosts
  }
}
