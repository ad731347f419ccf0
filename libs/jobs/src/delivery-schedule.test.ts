import { describe, expect, it } from 'vitest'
import { afterDelivery } from './delivery-schedule.ts'
import type { Delivery } from './job.ts'

const schedule = { initialDelayMs: 5_000, maxDelayMs: 3_600_000, maxAgeMs: 86_400_000 }
const fresh: Delivery = { index: 0, state: 'pending', attempts: 0, firstAt: 0, nextAt: 0 }

describe('afterDelivery', () => {
  it('a 2xx delivers', () => {
    expect(afterDelivery(fresh, { status: 204 }, 10, schedule, Math.random)).toMatchObject({
      state: 'delivered',
      attempts: 1,
      deliveredAt: 10,
      lastStatus: 204,
    })
  })

  it('failures wait 5 s, 20 s, 80 s … (×4) up to an hour, within ±20%', () => {
    let d = fresh
    const waits: number[] = []
    for (let i = 0; i < 8; i++) {
      const at = d.nextAt
      d = afterDelivery(d, { status: 500 }, at, schedule, () => 0.5)
      waits.push(d.nextAt - at)
    }
    expect(waits).toEqual([
      5_000, 20_000, 80_000, 320_000, 1_280_000, 3_600_000, 3_600_000, 3_600_000,
    ])
    const low = afterDelivery(fresh, { error: 'reset' }, 0, schedule, () => 0)
    const high = afterDelivery(fresh, { error: 'reset' }, 0, schedule, () => 0.999)
    expect(low.nextAt).toBe(4_000)
    expect(high.nextAt).toBeLessThanOrEqual(6_000)
    expect(low).toMatchObject({ lastError: 'reset' })
    expect(low).not.toHaveProperty('lastStatus')
  })

  it('dead once the next try would fall past the maximum age', () => {
    const old: Delivery = { ...fresh, attempts: 9, nextAt: 86_000_000, lastStatus: 500 }
    const dead = afterDelivery(old, { error: 'timeout' }, 86_000_000, schedule, () => 0.5)
    expect(dead).toMatchObject({ state: 'dead', attempts: 10, lastError: 'timeout' })
    expect(dead).not.toHaveProperty('lastStatus')
  })
})
