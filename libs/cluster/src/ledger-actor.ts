import type { Ticket } from '@fairlane/protocol'
import type { Decision, Ledger, ScopeLimit } from '@fairlane/limits'

/**
 * An actor that admits or refuses at once against the ledger: every scope that applies to the
 * ticket is checked together, so a refusal takes nothing from any scope.
 */
export class LedgerActor {
  readonly #ledger: Ledger
  readonly #scopesFor: (ticket: Ticket) => readonly ScopeLimit[]

  constructor(options: { ledger: Ledger; scopesFor: (ticket: Ticket) => readonly ScopeLimit[] }) {
    this.#ledger = options.ledger
    this.#scopesFor = options.scopesFor
  }

  admit(ticket: Ticket): Promise<Decision> {
    return this.#ledger.acquire(this.#scopesFor(ticket), ticket.cost)
  }
}
