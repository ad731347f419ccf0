import { performance } from 'node:perf_hooks'
import { MemoryLedger, type ScopeLimit } from '@fairlane/limits'
import type { Ticket } from '@fairlane/protocol'
import { NodeQueueBudget } from '@fairlane/scheduler'
import type { PartitionSettings } from './partition-hosts.ts'
import { QueueActor } from './queue-actor.ts'

/** One `free` tier, 2 s wait, small queue bounds: what most actor tests need. */
export const FREE_TIER: PartitionSettings = {
  tiers: [{ name: 'free', priority: 0, minShare: 0, maxWaitMs: 2000 }],
  bounds: { perLane: 3, perWorkspace: 100, perPartition: 100 },
  quantum: 1,
  discipline: 'fair',
}

export interface TestActorOptions {
  /** The limits of each ticket. */
  readonly scopesOf: (ticket: Ticket) => readonly ScopeLimit[]
  /** The partition's settings, read per ticket (a test may swap them: a reload). */
  readonly settings?: () => PartitionSettings
  /** The lane's tier, read per ticket. Default `free`. */
  readonly tier?: () => string
  readonly maxWaitMs?: number
  readonly onContention?: (partition: string) => void
}

/**
 * A queue actor for tests: a lane per `<workspace>/<keyId>`, one partition `<target>#0` per
 * target, in-memory limits on a real clock.
 */
export function testActor(options: TestActorOptions): { actor: QueueActor; ledger: MemoryLedger } {
  const now = () => performance.now()
  const ledger = new MemoryLedger({ now })
  const settings = options.settings ?? (() => FREE_TIER)
  const tier = options.tier ?? (() => 'free')
  const actor = new QueueActor({
    ledger,
    now,
    budget: new NodeQueueBudget(1000),
    policyFor: (t) => ({
      identity: {
        lane: `${t.workspace}/${t.keyId}`,
        workspace: t.workspace,
        tier: tier(),
        laneWeight: 1,
        workspaceWeight: 1,
      },
      scopes: options.scopesOf(t),
      maxWaitMs: options.maxWaitMs ?? 2000,
      partition: `${t.target}#0`,
      settings: settings(),
    }),
    ...(options.onContention ? { onContention: options.onContention } : {}),
  })
  return { actor, ledger }
}
