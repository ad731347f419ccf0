import type { ScopeLimit } from '@fairlane/limits'
import type { LaneIdentity } from '@fairlane/scheduler'
import type { PartitionSettings } from './partition-hosts.ts'

/** What the actor's config says about one ticket: its lane, its limits and its queue. */
export interface TicketPolicy {
  readonly identity: LaneIdentity
  /** Limits only this partition touches: decided exactly, in memory. */
  readonly scopes: readonly ScopeLimit[]
  /** Limits other actors spend too (cluster mode): spent from the shared allowance. */
  readonly sharedScopes?: readonly ScopeLimit[]
  readonly maxWaitMs: number
  /** Names the target partition whose scheduler holds the lane. */
  readonly partition: string
  readonly settings: PartitionSettings
}
