import type { Actor, Admission, Ticket, Transport } from '@fairlane/protocol'

/** Embedded mode: every partition lives in this process, so a ticket is a plain call. */
export class InProcessTransport implements Transport {
  readonly #actor: Actor

  constructor(actor: Actor) {
    this.#actor = actor
  }

  submit(ticket: Ticket, signal?: AbortSignal): Promise<Admission> {
    return this.#actor.admit(ticket, signal)
  }

  async close(): Promise<void> {}
}
