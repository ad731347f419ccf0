import type { Ticket } from '@fairlane/protocol'
import type { Decision } from '@fairlane/limits'

/** Whatever owns a lane's partition and decides on its tickets. */
export interface Actor {
  admit(ticket: Ticket): Promise<Decision>
}

/**
 * How ingress reaches the actor that owns a ticket's lane: a function call in embedded mode,
 * NATS request/reply in a cluster. Code above this interface is the same in both.
 */
export interface Transport {
  submit(ticket: Ticket): Promise<Decision>
  close(): Promise<void>
}
