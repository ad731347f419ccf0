import { describe, expect, it } from 'vitest'
import { attemptVerdict } from './attempt-policy.ts'
import { checkJobBody } from './job-body.ts'
import type { JobRecord } from './job.ts'

function job(overrides: Partial<JobRecord> = {}): JobRecord {
  const checked = checkJobBody({ request: { target: 'echo', path: '/' }, retry: { attempts: 3 } })
  if (!checked.ok) throw new Error(checked.problems.join())
  return {
    id: 'job_1',
    workspace: 'w',
    keyId: 'k',
    state: 'running',
    body: checked.body,
    createdAt: 0,
    updatedAt: 0,
    dueAt: 0,
    deadlineAt: 60_000,
    attempts: [],
    chainId: 'job_1',
    deliveries: [],
    ...overrides,
  }
}

const half = () => 0.5
const ok = { status: 200, headers: {} }

describe('attemptVerdict', () => {
  it('2xx and 3xx succeed; any other 4xx but 408/425/429 fails at once', () => {
    expect(attemptVerdict(job(), { response: ok, calls: 1 }, 0, half)).toMatchObject({
      next: 'finish',
      state: 'succeeded',
    })
    expect(
      attemptVerdict(job(), { response: { status: 302, headers: {} }, calls: 1 }, 0, half),
    ).toMatchObject({ state: 'succeeded' })
    expect(
      attemptVerdict(job(), { response: { status: 404, headers: {} }, calls: 1 }, 0, half),
    ).toMatchObject({ state: 'failed', error: { code: 'upstream_status' } })
  })

  it('a 429 comes back at the time the upstream named, else after a growing backoff', () => {
    const limited = { response: { status: 429, headers: {} }, calls: 1 }
    expect(attemptVerdict(job(), { ...limited, retryAfterMs: 7_000 }, 1_000, half)).toEqual({
      next: 'retry',
      at: 8_000,
    })
    const first = attemptVerdict(job(), limited, 0, half)
    const second = attemptVerdict(
      job({ attempts: [{ startedAt: 0, finishedAt: 0, status: 429, calls: 1 }] }),
      limited,
      0,
      half,
    )
    expect(first).toEqual({ next: 'retry', at: 1_000 })
    expect(second).toEqual({ next: 'retry', at: 2_000 })
  })

  it('gives up when the attempts are spent or the next would start past the deadline', () => {
    const spent = job({
      attempts: [
        { startedAt: 0, finishedAt: 0, status: 503, calls: 1 },
        { startedAt: 0, finishedAt: 0, status: 503, calls: 1 },
      ],
    })
    const unavailable = { response: { status: 503, headers: {} }, calls: 1 }
    expect(attemptVerdict(spent, unavailable, 0, half)).toMatchObject({
      state: 'failed',
      response: { status: 503 },
    })
    expect(attemptVerdict(job(), { ...unavailable, retryAfterMs: 120_000 }, 0, half)).toMatchObject(
      { state: 'failed', error: { code: 'job_deadline' } },
    )
  })

  it('a lane refusal before any call does not spend an attempt; a final refusal ends the job', () => {
    const refused = {
      error: { code: 'queue_full', message: 'full' },
      calls: 0,
      retryAfterMs: 500,
    }
    const many = job({
      attempts: Array.from({ length: 5 }, () => ({ startedAt: 0, finishedAt: 0, calls: 0 })),
    })
    expect(attemptVerdict(many, refused, 0, half)).toEqual({ next: 'retry', at: 500 })
    expect(
      attemptVerdict(
        job(),
        { error: { code: 'forbidden_target', message: 'no' }, calls: 0, final: true },
        0,
        half,
      ),
    ).toMatchObject({ state: 'failed', error: { code: 'forbidden_target' } })
  })
})
