import { describe, expect, it } from 'vitest'
import { configFromValue } from '@fairlane/config'
import { ticketPolicy } from './scopes.ts'

const config = configFromValue(
  {
    targets: { echo: { endpoints: [{ url: 'https://echo.example.com' }], partitions: 8 } },
    workspaces: {
      w: {
        targets: ['echo'],
        keys: [{ id: 'k', hash: `sha256:${'0'.repeat(64)}`, tier: 'paid' }],
      },
    },
  },
  {},
  'test',
)
const ticket = { requestId: 'r', workspace: 'w', keyId: 'k', target: 'echo', cost: 1 }

describe('ticketPolicy', () => {
  it('a ticket at a tier below its key’s gets a lane of its own at that tier, in the key’s partition', () => {
    const own = ticketPolicy(config, ticket)
    const below = ticketPolicy(config, { ...ticket, tier: 'free' })
    expect(own.identity).toMatchObject({ lane: 'w/k', tier: 'paid' })
    expect(below.identity).toMatchObject({ lane: 'w/k~free', tier: 'free' })
    expect(below.partition).toBe(own.partition)
    expect(below.maxWaitMs).toBe(config.tiers['free']?.maxWaitMs)
  })

  it('a tier above the key’s, or one not configured, leaves the ticket at the key’s tier', () => {
    for (const tier of ['reserved', 'gold', 'paid']) {
      expect(ticketPolicy(config, { ...ticket, tier }).identity).toMatchObject({
        lane: 'w/k',
        tier: 'paid',
      })
    }
  })
})
