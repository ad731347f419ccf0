import { describe, expect, it } from 'vitest'
import { authenticate } from './authenticate.ts'
import { exchangeFor, KEY, stageConfig } from './exchange-fixture.ts'

describe('authenticate', () => {
  it('finds the principal of a key sent as Bearer or X-Fairlane-Key', () => {
    const sent: Record<string, string>[] = [
      { authorization: `Bearer ${KEY}` },
      { 'x-fairlane-key': KEY },
    ]
    for (const headers of sent) {
      const x = exchangeFor({ headers })
      authenticate(x)
      expect(x.workspace).toBe('demo')
      expect(x.keyId).toBe('k1')
      expect(x.stage).toBe('authenticate')
    }
  })

  it('refuses a missing or unknown key', () => {
    const sent: Record<string, string>[] = [{}, { authorization: 'Bearer fl_wrong' }]
    for (const headers of sent) {
      expect(() => authenticate(exchangeFor({ headers }))).toThrow(
        expect.objectContaining({ code: 'unauthenticated', stage: 'authenticate' }),
      )
    }
  })

  it('refuses a key on the first request served under a config without it', () => {
    const headers = { authorization: `Bearer ${KEY}` }
    authenticate(exchangeFor({ headers }))
    const revoked = stageConfig({ workspaces: { demo: { targets: ['echo'], keys: [] } } })
    expect(() => authenticate(exchangeFor({ headers }, revoked))).toThrow(
      expect.objectContaining({ code: 'unauthenticated' }),
    )
  })
})
