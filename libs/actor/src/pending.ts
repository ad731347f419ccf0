import type { Decision, SharedCheck, SharedHold } from '@fairlane/limits'
import type { Admission, Ticket } from '@fairlane/protocol'
import type { PartitionHost } from './partition-hosts.ts'
import type { TicketPolicy } from './ticket-policy.ts'

/** A ticket waiting in a partition's scheduler, and what the gate decided for it. */
export interface Pending {
  readonly ticket: Ticket
  readonly policy: TicketPolicy
  readonly host: PartitionHost<Pending>
  readonly resolve: (admission: Admission) => void
  decision?: Decision
  hold?: SharedHold
  /** A shared scope refused for good (a cost that never fits, a closed ledger). */
  sharedRefusal?: SharedCheck & { ok: false }
  detach?: () => void
}
