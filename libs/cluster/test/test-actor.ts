import { performance } from 'node:perf_hooks'
import { QueueActor, type PartitionSettings } from '@fairlane/actor'
import { MemoryLedger, type ScopeLimit } from '@fairlane/limits'
import type { Ticket } from '@fairlane/protocol'
import { NodeQueueBudget } from '@fairlane/scheduler'

export interface TestActorOptions {
  /** The limits of each ticket. */
  readonly scopesOf: (ticket: Ticket) => readonly ScopeLimit[]
  /** The one tier's longest wait. Default 5000. */
  readonly maxWaitMs?: number
  /** Per-lane queue bound (workspace and partition bounds are ten times it). Default 1000. */
  readonly perLane?: number
  readonly onContention?: (partition: string) => void
}

/**
 * The queue actor the transport tests put behind a shard: one `free` tier, a lane per
 * `<workspace>/<keyId>`, partition `<target>#0`, in-memory limits on a real clock.
 */
export function testActor(options: TestActorOptions): { actor: QueueActor; ledger: MemoryLedger } {
  const now = () => performance.now()
  const ledger = new MemoryLedger({ now })
  const maxWaitMs = options.maxWaitMs ?? 5000
  const perLane = options.perLane ?? 1000
  const settings: PartitionSettings = {
    tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs }],
    bounds: { perLane, perWorkspace: perLane * 10, perPartition: perLane * 10 },
    quantum: 1,
    discipline: 'fair',
  }
  const actor = new QueueActor({
    ledger,
    now,
    budget: new NodeQueueBudget(10_000),
    policyFor: (t) => ({
      identity: {
        lane: `${t.workspace}/${t.keyId}`,
        workspace: t.workspace,
        tier: 'free',
        laneWeight: 1,
        workspaceWeight: 1,
      },
      scopes: options.scopesOf(t),
      maxWaitMs,
      partition: `${t.target}#0`,
      settings,
    }),
    ...(options.onContention ? { onContention: options.onContention } : {}),
  })
  return { actor, ledger }
}
