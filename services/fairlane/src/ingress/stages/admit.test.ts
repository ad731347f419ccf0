import { describe, expect, it } from 'vitest'
import { declaredCost, ticketOf } from './admit.ts'
import { authenticate } from './authenticate.ts'
import { exchangeFor, KEY } from './exchange-fixture.ts'

describe('admit: the ticket', () => {
  it('reads the declared cost where the target accepts it, within its bounds', () => {
    const x = exchangeFor({ headers: { authorization: `Bearer ${KEY}`, 'fairlane-cost': '7' } })
    authenticate(x)
    x.target = 'echo'
    x.targetConfig = x.config.targets['echo']
    ticketOf(x)
    expect(x.ticket).toMatchObject({ workspace: 'demo', keyId: 'k1', target: 'echo', cost: 7 })
    expect(x.stage).toBe('limit')
    const target = x.config.targets['echo']
    expect(declaredCost(undefined, target)).toBe(1)
    for (const bad of ['0', '11', '1.5', 'x'])
      expect(() => declaredCost(bad, target)).toThrow(
        expect.objectContaining({ code: 'bad_request', stage: 'limit' }),
      )
  })

  it('ignores a declared cost for a target that does not accept one', () => {
    expect(declaredCost('5', undefined)).toBe(1)
  })
})
