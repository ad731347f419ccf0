import { describe, expect, it } from 'vitest'
import type { Delivery, JobRecord } from './job.ts'
import { messageVerdict } from './job-message.ts'

const base = {
  id: 'job_1',
  workspace: 'w',
  keyId: 'k',
  body: { request: { method: 'GET', target: 'echo', path: '/' } },
  createdAt: 0,
  updatedAt: 0,
  dueAt: 100,
  deadlineAt: 10_000,
  attempts: [],
  chainId: 'job_1',
  deliveries: [],
} as unknown as JobRecord

function delivery(over: Partial<Delivery>): Delivery {
  return { index: 0, state: 'pending', attempts: 0, firstAt: 0, nextAt: 0, ...over }
}

describe('messageVerdict', () => {
  it('a job gone from the bucket needs nothing more', () => {
    expect(messageVerdict(undefined, 1, 0)).toEqual({ kind: 'done' })
  })

  it('a queued job runs when due and waits until then otherwise', () => {
    expect(messageVerdict({ job: { ...base, state: 'queued' } }, 1, 40)).toEqual({
      kind: 'later',
      delayMs: 60,
    })
    expect(messageVerdict({ job: { ...base, state: 'queued' } }, 1, 100)).toEqual({ kind: 'run' })
  })

  it('a running job runs again only under the message that claimed it', () => {
    const running = { job: { ...base, state: 'running' as const }, runBy: { seq: 7, delivery: 1 } }
    expect(messageVerdict(running, 7, 0)).toEqual({ kind: 'run' })
    expect(messageVerdict(running, 8, 0)).toEqual({ kind: 'done' })
  })

  it('a finished job waits for its earliest pending delivery, and is done when none is pending', () => {
    const finished = (deliveries: Delivery[]) => ({
      job: { ...base, state: 'succeeded' as const, deliveries },
    })
    expect(
      messageVerdict(
        finished([delivery({ nextAt: 500 }), delivery({ index: 1, nextAt: 300 })]),
        1,
        100,
      ),
    ).toEqual({ kind: 'later', delayMs: 200 })
    expect(messageVerdict(finished([delivery({ nextAt: 100 })]), 1, 100)).toEqual({
      kind: 'deliver',
    })
    expect(
      messageVerdict(
        finished([delivery({ state: 'delivered' }), delivery({ index: 1, state: 'dead' })]),
        1,
        0,
      ),
    ).toEqual({ kind: 'done' })
  })
})
