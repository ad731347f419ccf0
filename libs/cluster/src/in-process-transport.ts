import type { Ticket } from '@fairlane/protocol'
import type { Decision } from '@fairlane/limits'
import type { Actor, Transport } from './transport.ts'

/** Embedded mode: every partition lives in this process, so a ticket is a plain call. */
export class InProcessTransport implements Transport {
  readonly #actor: Actor

  constructor(actor: Actor) {
    this.#actor = actor
  }

  submit(ticket: Ticket): Promise<Decision> {
    return this.#actor.admit(ticket)
  }

  async close(): Promise<void> {}
}
