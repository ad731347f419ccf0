import { describe, expect, it } from 'vitest'
import { MemoryLedger, type ScopeLimit } from '@fairlane/limits'
import { InProcessTransport } from './in-process-transport.ts'
import { LedgerActor } from './ledger-actor.ts'

describe('InProcessTransport with a LedgerActor', () => {
  it('decides a ticket by the scopes the actor derives, not by anything in the ticket', async () => {
    const scope: ScopeLimit = {
      id: 'key:w/k',
      kind: 'key',
      rate: { limit: 1, periodMs: 1000, burst: 1 },
    }
    const seen: string[] = []
    const actor = new LedgerActor({
      ledger: new MemoryLedger({ now: () => 0 }),
      scopesFor: (ticket) => {
        seen.push(`${ticket.workspace}/${ticket.keyId}/${ticket.target}`)
        return [scope]
      },
    })
    const transport = new InProcessTransport(actor)
    const ticket = { requestId: 'r1', workspace: 'w', keyId: 'k', target: 'echo', cost: 1 }
    expect((await transport.submit(ticket)).allowed).toBe(true)
    const second = await transport.submit({ ...ticket, requestId: 'r2' })
    expect(second.allowed).toBe(false)
    expect(seen).toEqual(['w/k/echo', 'w/k/echo'])
    await transport.close()
  })
})
