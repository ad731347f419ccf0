import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { followUpOf } from './chain.ts'
import { jobDocument } from './job.ts'
import { checkJobBody, type JobBody } from './job-body.ts'
import { SqliteJobStore } from './sqlite-job-store.ts'

function body(value: unknown): JobBody {
  const checked = checkJobBody(value)
  if (!checked.ok) throw new Error(checked.problems.join())
  return checked.body
}

async function open(file?: string) {
  let now = 1_000
  let n = 0
  const path = file ?? join(await mkdtemp(join(tmpdir(), 'fairlane-store-')), 'jobs.sqlite')
  const store = new SqliteJobStore({
    file: path,
    now: () => now,
    newId: () => `job_${++n}_${path.length}`,
    retentionMs: 10_000,
    idempotencyMs: 5_000,
  })
  return { store, path, advance: (ms: number) => (now += ms) }
}

const JOB = { workspace: 'w', keyId: 'k', deadlineMs: 60_000 }
const request = { request: { target: 'echo', path: '/' }, webhook: { target: 'hooks' } }

describe('SqliteJobStore', () => {
  it('claims due jobs once, and a job left running by a dead process is due again on open', async () => {
    const { store, path } = await open()
    const { job } = await store.submit({ ...JOB, body: body(request) })
    expect(await store.claim(10, 10, () => true)).toHaveLength(1)
    expect(await store.claim(10, 10, () => true)).toHaveLength(0)
    // No close: as after SIGKILL.
    const { store: reopened } = await open(path)
    expect(await reopened.get('w', job.id)).toMatchObject({ state: 'queued' })
    expect((await reopened.claim(10, 10, () => true)).map((j) => j.id)).toEqual([job.id])
    await reopened.close()
    await store.close()
  })

  it('claims the oldest due jobs of every key, so one key’s backlog hides no other key’s job', async () => {
    const { store, advance } = await open()
    for (let i = 0; i < 50; i++) await store.submit({ ...JOB, body: body(request) })
    advance(1)
    const other = await store.submit({ ...JOB, keyId: 'k2', body: body(request) })
    const claimed = await store.claim(2, 1, () => true)
    expect(claimed.map((j) => j.keyId)).toEqual(['k', 'k2'])
    expect(claimed[1]?.id).toBe(other.job.id)
    // A key the worker refuses (at its share) leaves room for the next key.
    const third = await store.submit({ ...JOB, keyId: 'k3', body: body(request) })
    const next = await store.claim(1, 1, (j) => j.keyId !== 'k')
    expect(next.map((j) => j.id)).toEqual([third.job.id])
    await store.close()
  })

  it('an Idempotency-Key names one job within its window only', async () => {
    const { store, advance } = await open()
    const a = await store.submit({ ...JOB, body: body(request), idempotencyKey: 'x' })
    const b = await store.submit({ ...JOB, body: body(request), idempotencyKey: 'x' })
    expect(b).toMatchObject({ kind: 'replayed', job: { id: a.job.id } })
    const other = await store.submit({
      ...JOB,
      body: body({ request: { target: 'echo', path: '/2' } }),
      idempotencyKey: 'x',
    })
    expect(other.kind).toBe('conflict')
    advance(5_001)
    expect((await store.submit({ ...JOB, body: body(request), idempotencyKey: 'x' })).kind).toBe(
      'created',
    )
    await store.close()
  })

  it('a finished job’s webhook is due at once, its follow-up is stored with it, and it expires after retention', async () => {
    const { store, advance } = await open()
    const { job } = await store.submit({ ...JOB, body: body(request) })
    await store.claim(1, 1, () => true)
    const done = await store.endAttempt(
      job.id,
      { startedAt: 1_000, finishedAt: 1_000, status: 200, calls: 1 },
      {
        next: 'finish',
        state: 'succeeded',
        response: { status: 200, headers: {} },
        followUps: [
          {
            ...JOB,
            body: body({ request: { target: 'echo', path: '/next' } }),
            chainId: job.chainId,
            parentId: job.id,
          },
        ],
      },
    )
    expect(done?.followUps).toHaveLength(1)
    const next = await store.get('w', done?.followUps?.[0] ?? '')
    expect(next).toMatchObject({ chainId: job.id, parentId: job.id, state: 'queued' })
    expect((await store.dueDeliveries(10)).map((j) => j.id)).toEqual([job.id])
    // A cancel after the end changes nothing.
    expect(await store.cancel('w', job.id)).toMatchObject({ state: 'succeeded' })
    expect(await store.get('other', job.id)).toBeUndefined()
    advance(10_001)
    expect(await store.sweep()).toBe(1)
    expect(await store.get('w', job.id)).toBeUndefined()
    await store.close()
  })

  it('keeps the submission’s traceparent for the job and its follow-up, out of the document', async () => {
    const { store, path } = await open()
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const chained = { ...request, onSuccess: { request: { target: 'echo', path: '/next' } } }
    const { job } = await store.submit({ ...JOB, body: body(chained), traceparent })
    const { store: reopened } = await open(path)
    const stored = await reopened.get('w', job.id)
    expect(stored?.traceparent).toBe(traceparent)
    expect(JSON.stringify(jobDocument(stored ?? job))).not.toContain(traceparent)
    expect(followUpOf(stored ?? job, 'succeeded', {}, () => 1_000)?.traceparent).toBe(traceparent)
    await reopened.close()
    await store.close()
  })

  it('an attempt ending after a cancel is not recorded', async () => {
    const { store } = await open()
    const { job } = await store.submit({ ...JOB, body: body(request) })
    await store.claim(1, 1, () => true)
    await store.cancel('w', job.id)
    const after = await store.endAttempt(
      job.id,
      { startedAt: 0, finishedAt: 0, status: 200, calls: 1 },
      { next: 'finish', state: 'succeeded', followUps: [] },
    )
    expect(after).toMatchObject({ state: 'cancelled', attempts: [] })
    await store.close()
  })
})
