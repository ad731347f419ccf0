import type { AdaptiveState, MemoryLedger, ScopeLimit, ScopeSnapshot } from '@fairlane/limits'
import type { AdaptiveLanes } from './adaptive-lanes.ts'

/** A partition's lane state for its next owner: in-memory limits and what lanes learned upstream. */
export interface PartitionSnapshot {
  readonly scopes: ScopeSnapshot
  readonly lanes?: Readonly<Record<string, AdaptiveState>>
}

/**
 * Which partitions changed since their last checkpoint and which in-memory scopes each has
 * used, so a snapshot holds a partition's own state and only when it changed.
 */
export class CheckpointBook {
  readonly #ledger: MemoryLedger
  readonly #lanes: AdaptiveLanes
  /** Scopes are tracked only where state is saved for a next owner (cluster mode). */
  readonly #tracking: boolean
  /** Ids of the in-memory scopes each partition has used: what its checkpoint holds. */
  readonly #localScopes = new Map<string, Set<string>>()
  /** Partitions whose in-memory limit state changed since their last checkpoint. */
  readonly #dirty = new Set<string>()

  constructor(options: { ledger: MemoryLedger; lanes: AdaptiveLanes; tracking: boolean }) {
    this.#ledger = options.ledger
    this.#lanes = options.lanes
    this.#tracking = options.tracking
  }

  /** The partition decided with these scopes: they now hold state worth saving. */
  touched(partition: string, scopes: readonly ScopeLimit[]): void {
    if (!this.#tracking) return
    let ids = this.#localScopes.get(partition)
    if (!ids) this.#localScopes.set(partition, (ids = new Set()))
    for (const scope of scopes) if (scope.rate || scope.window) ids.add(scope.id)
    this.#dirty.add(partition)
  }

  /** The partition's state changed otherwise (a late cost, a lane that learned). */
  changed(partition: string): void {
    this.#dirty.add(partition)
  }

  /** Partitions with changes since their last snapshot. */
  get changedPartitions(): readonly string[] {
    return [...this.#dirty]
  }

  /**
   * The limit state of a partition's in-memory scopes, for whoever owns it next (a cluster
   * checkpoints it to Redis). `dirtyOnly`: only if it changed since the last call.
   */
  snapshot(partition: string, dirtyOnly = false): PartitionSnapshot | undefined {
    if (dirtyOnly && !this.#dirty.has(partition)) return undefined
    this.#dirty.delete(partition)
    const ids = this.#localScopes.get(partition)
    const scopes = this.#ledger.snapshot(ids ?? [])
    // A scope back to full holds nothing worth saving; forget it until it is used again.
    for (const id of ids ?? []) if (!(id in scopes)) ids?.delete(id)
    const lanes = this.#lanes.save(partition)
    return Object.keys(lanes).length > 0 ? { scopes, lanes } : { scopes }
  }

  /** Resumes a partition's limit state saved by its previous owner `ageMs` ago. */
  restore(partition: string, snapshot: PartitionSnapshot, ageMs: number): void {
    this.#ledger.restore(snapshot.scopes, ageMs)
    const ids = this.#localScopes.get(partition) ?? new Set()
    for (const id of Object.keys(snapshot.scopes)) ids.add(id)
    this.#localScopes.set(partition, ids)
    if (snapshot.lanes) this.#lanes.restore(partition, snapshot.lanes, ageMs)
  }
}
