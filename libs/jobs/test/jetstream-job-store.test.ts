import { randomBytes } from 'node:crypto'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startNats, type NatsServer } from '@fairlane/testing'
import { JOB_STREAM } from '../src/job-streams.ts'
import {
  JetStreamJobStore,
  checkJobBody,
  sortableJobId,
  type JobBody,
  type JobRecord,
} from '../src/index.ts'

function body(value: unknown): JobBody {
  const checked = checkJobBody(value)
  if (!checked.ok) throw new Error(checked.problems.join())
  return checked.body
}

const JOB = { workspace: 'w', keyId: 'k', deadlineMs: 60_000 }
const request = { request: { target: 'echo', path: '/' }, webhook: { target: 'hooks' } }
const OK = { startedAt: 0, finishedAt: 0, status: 200, calls: 1 }

let server: NatsServer | undefined
const connections: NatsConnection[] = []
const stores: JetStreamJobStore[] = []

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close().catch(() => undefined)))
  await Promise.all(connections.splice(0).map((nc) => nc.close().catch(() => undefined)))
  await server?.stop()
  server = undefined
})

async function nats(): Promise<NatsConnection> {
  server ??= await startNats({ jetstream: true })
  const nc = await connect({ servers: server.url })
  connections.push(nc)
  return nc
}

/** A store as a node opens it; `work` makes it a worker that takes messages. */
async function open(
  options: {
    work?: boolean
    ackWaitMs?: number
    slots?: number
    onError?: (err: unknown) => void
  } = {},
) {
  const nc = await nats()
  const ready = { count: 0 }
  const cancelled: string[] = []
  const store = await JetStreamJobStore.open({
    nc,
    now: () => Date.now(),
    newId: () => sortableJobId(Date.now(), randomBytes(10).toString('hex')),
    keepMs: 3_600_000,
    idempotencyMs: 60_000,
    replicas: 1,
    ackWaitMs: options.ackWaitMs ?? 30_000,
    openWaitMs: 20_000,
    ...(options.work !== false
      ? {
          work: {
            slots: () => options.slots ?? 100,
            deliveries: 10,
            onReady: () => void ready.count++,
            onError:
              options.onError ??
              ((err: unknown) => {
                throw err
              }),
            onCancelled: (id: string) => void cancelled.push(id),
          },
        }
      : {}),
  })
  stores.push(store)
  return { store, nc, ready, cancelled }
}

/** Claims until `count` jobs came (messages arrive in the background). */
async function claimed(store: JetStreamJobStore, count: number): Promise<JobRecord[]> {
  const jobs: JobRecord[] = []
  await vi.waitFor(
    async () => {
      jobs.push(...(await store.claim(count - jobs.length, count, () => true)))
      expect(jobs.length).toBe(count)
    },
    { timeout: 15_000, interval: 50 },
  )
  return jobs
}

async function messagesLeft(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc)
  return (await jsm.streams.info(JOB_STREAM)).state.messages
}

describe('JetStreamJobStore', () => {
  it('stores, reads, lists newest first by page, and cancels jobs of one workspace only', async () => {
    const { store } = await open({ work: false })
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      ids.push((await store.submit({ ...JOB, body: body(request) })).job.id)
      await new Promise((r) => setTimeout(r, 2))
    }
    await store.submit({ ...JOB, workspace: 'other', body: body(request) })
    expect(await store.get('w', ids[0] ?? '')).toMatchObject({ state: 'queued', keyId: 'k' })
    expect(await store.get('other', ids[0] ?? '')).toBeUndefined()
    const first = await store.list('w', { limit: 3 })
    expect(first.jobs.map((j) => j.id)).toEqual([ids[4], ids[3], ids[2]])
    const second = await store.list('w', {
      limit: 3,
      ...(first.cursor ? { cursor: first.cursor } : {}),
    })
    expect(second.jobs.map((j) => j.id)).toEqual([ids[1], ids[0]])
    expect(second.cursor).toBeUndefined()
    expect(await store.cancel('w', ids[1] ?? '')).toMatchObject({ state: 'cancelled' })
    expect(
      (await store.list('w', { limit: 10, state: 'cancelled' })).jobs.map((j) => j.id),
    ).toEqual([ids[1]])
    expect(await store.cancel('other', ids[2] ?? '')).toBeUndefined()
  })

  it('an Idempotency-Key names one job: the same body replays it, another conflicts', async () => {
    const { store } = await open({ work: false })
    const a = await store.submit({ ...JOB, body: body(request), idempotencyKey: 'x' })
    const b = await store.submit({ ...JOB, body: body(request), idempotencyKey: 'x' })
    expect(b).toMatchObject({ kind: 'replayed', job: { id: a.job.id } })
    const other = await store.submit({
      ...JOB,
      body: body({ request: { target: 'echo', path: '/2' } }),
      idempotencyKey: 'x',
    })
    expect(other).toMatchObject({ kind: 'conflict', job: { id: a.job.id } })
    // Another workspace's same key is its own.
    expect(
      (await store.submit({ ...JOB, workspace: 'v', body: body(request), idempotencyKey: 'x' }))
        .kind,
    ).toBe('created')
  })

  it('two workers share the queue and never both claim a job; each message is acked once its job is done', async () => {
    const submitter = await open({ work: false })
    const a = await open()
    const b = await open()
    const ids = new Set<string>()
    for (let i = 0; i < 40; i++) {
      ids.add(
        (await submitter.store.submit({ ...JOB, body: body({ request: request.request }) })).job.id,
      )
    }
    const taken: string[] = []
    await vi.waitFor(
      async () => {
        for (const store of [a.store, b.store]) {
          for (const job of await store.claim(40, 40, () => true)) {
            taken.push(job.id)
            await store.endAttempt(job.id, OK, {
              next: 'finish',
              state: 'succeeded',
              followUps: [],
            })
          }
        }
        expect(taken.length).toBeGreaterThanOrEqual(40)
      },
      { timeout: 15_000, interval: 50 },
    )
    expect(taken).toHaveLength(40)
    expect(new Set(taken)).toEqual(ids)
    for (const id of ids) {
      expect(await submitter.store.get('w', id)).toMatchObject({ state: 'succeeded' })
    }
    await vi.waitFor(async () => expect(await messagesLeft(submitter.nc)).toBe(0))
  })

  it('a retry comes back at its time, and a job the worker refuses goes back for later', async () => {
    const { store } = await open()
    const { job } = await store.submit({ ...JOB, body: body({ request: request.request }) })
    // Refused (the key at its share): not claimed now, fetched again later.
    expect(await store.claim(1, 1, () => false)).toEqual([])
    const [first] = await claimed(store, 1)
    expect(first?.id).toBe(job.id)
    const at = Date.now() + 500
    expect(
      await store.endAttempt(job.id, { ...OK, status: 429, retryAt: at }, { next: 'retry', at }),
    ).toMatchObject({ state: 'queued', dueAt: at })
    expect(await store.claim(1, 1, () => true)).toEqual([])
    const [again] = await claimed(store, 1)
    expect(Date.now()).toBeGreaterThanOrEqual(at)
    expect(again).toMatchObject({ id: job.id, state: 'running', attempts: [{ status: 429 }] })
  })

  it('a worker that stops extending its message loses the job to another, whose outcome alone is recorded', async () => {
    // The first worker extends every 20 s; the second sets the consumer's ack wait to 1 s.
    const slow = await open({ ackWaitMs: 60_000 })
    const { job } = await slow.store.submit({ ...JOB, body: body(request) })
    await claimed(slow.store, 1)
    const other = await open({ ackWaitMs: 1_000 })
    const [taken] = await claimed(other.store, 1)
    expect(taken).toMatchObject({ id: job.id, state: 'running' })
    // The first worker's late outcome finds the job run by another: not written.
    const late = await slow.store.endAttempt(
      job.id,
      { ...OK, status: 500 },
      { next: 'finish', state: 'failed', followUps: [] },
    )
    expect(late).toMatchObject({ state: 'running', attempts: [] })
    await other.store.endAttempt(job.id, OK, { next: 'finish', state: 'succeeded', followUps: [] })
    expect(await other.store.get('w', job.id)).toMatchObject({
      state: 'succeeded',
      attempts: [{ status: 200 }],
    })
  })

  it('a worker extends the messages of its running jobs: no other worker takes them past the ack wait', async () => {
    const a = await open({ ackWaitMs: 1_000 })
    const { job } = await a.store.submit({ ...JOB, body: body(request) })
    await claimed(a.store, 1)
    const b = await open({ ackWaitMs: 1_000 })
    await new Promise((r) => setTimeout(r, 3_000))
    expect(await b.store.claim(1, 1, () => true)).toEqual([])
    expect(
      await a.store.endAttempt(job.id, OK, { next: 'finish', state: 'succeeded', followUps: [] }),
    ).toMatchObject({ state: 'succeeded', attempts: [{ status: 200 }] })
  })

  it('a worker with every slot taken leaves due jobs to a worker with free ones', async () => {
    const busy = await open({ slots: 1 })
    const first = await busy.store.submit({ ...JOB, body: body(request) })
    const [running] = await claimed(busy.store, 1)
    expect(running?.id).toBe(first.job.id)
    const second = await busy.store.submit({ ...JOB, body: body(request) })
    const idle = await open()
    const [taken] = await claimed(idle.store, 1)
    expect(taken?.id).toBe(second.job.id)
  })

  it('a worker reads the queue again once NATS is back', async () => {
    const errors: unknown[] = []
    const { store } = await open({ onError: (err) => errors.push(err) })
    await server?.stop()
    await new Promise((r) => setTimeout(r, 2_000))
    await server?.start()
    const submitted = await vi.waitFor(
      () => store.submit({ ...JOB, body: body({ request: request.request }) }),
      { timeout: 15_000, interval: 500 },
    )
    const [taken] = await claimed(store, 1)
    expect(taken?.id).toBe(submitted.job.id)
    expect(errors.length).toBeLessThanOrEqual(1)
  })

  it('a queue that cannot be read is reported once, not at every try; a consumer removed is made again', async () => {
    const errors: unknown[] = []
    const { nc, store } = await open({ onError: (err) => errors.push(err) })
    await (await jetstreamManager(nc)).consumers.delete(JOB_STREAM, 'workers')
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 10_000 })
    // Tried again every second meanwhile.
    await new Promise((r) => setTimeout(r, 3_000))
    expect(errors).toHaveLength(1)
    const { job } = await store.submit({ ...JOB, body: body({ request: request.request }) })
    const [taken] = await claimed(store, 1)
    expect(taken?.id).toBe(job.id)
  })

  it('a closing worker gives its messages back at once, without waiting for the ack wait', async () => {
    const a = await open()
    const { job } = await a.store.submit({ ...JOB, body: body(request) })
    await claimed(a.store, 1)
    const b = await open()
    const started = Date.now()
    await a.store.close()
    const [taken] = await claimed(b.store, 1)
    expect(taken).toMatchObject({ id: job.id, state: 'running' })
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it('a finished job’s webhooks are held while due, given back until a retry, and its follow-up queued', async () => {
    const { store, nc } = await open()
    const { job } = await store.submit({ ...JOB, body: body(request) })
    await claimed(store, 1)
    const done = await store.endAttempt(job.id, OK, {
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
    })
    const next = await store.get('w', done?.followUps?.[0] ?? '')
    expect(next).toMatchObject({ chainId: job.id, parentId: job.id, state: 'queued' })
    expect((await store.dueDeliveries(10)).map((j) => j.id)).toEqual([job.id])
    const retryAt = Date.now() + 500
    const [delivery] = done?.deliveries ?? []
    if (!delivery) throw new Error('no delivery')
    await store.recordDelivery(job.id, {
      ...delivery,
      attempts: 1,
      lastStatus: 500,
      nextAt: retryAt,
    })
    expect(await store.dueDeliveries(10)).toEqual([])
    await vi.waitFor(
      async () => expect((await store.dueDeliveries(10)).map((j) => j.id)).toEqual([job.id]),
      { timeout: 10_000, interval: 50 },
    )
    expect(Date.now()).toBeGreaterThanOrEqual(retryAt)
    await store.recordDelivery(job.id, {
      ...delivery,
      state: 'delivered',
      attempts: 2,
      lastStatus: 200,
      deliveredAt: Date.now(),
    })
    const [followUp] = await claimed(store, 1)
    expect(followUp?.id).toBe(next?.id)
    await store.endAttempt(followUp?.id ?? '', OK, {
      next: 'finish',
      state: 'succeeded',
      followUps: [],
    })
    await vi.waitFor(async () => expect(await messagesLeft(nc)).toBe(0))
    expect(await store.get('w', job.id)).toMatchObject({
      deliveries: [{ state: 'delivered', attempts: 2 }],
    })
  })

  it('a cancellation on one node stops the attempt on the worker running it', async () => {
    const worker = await open()
    const { job } = await worker.store.submit({ ...JOB, body: body(request) })
    await claimed(worker.store, 1)
    const front = await open({ work: false })
    expect(await front.store.cancel('w', job.id)).toMatchObject({ state: 'cancelled' })
    await vi.waitFor(() => expect(worker.cancelled).toEqual([job.id]))
  })

  it('a job cancelled while it waits for a retry has its webhook delivered at once', async () => {
    const { store } = await open()
    const { job } = await store.submit({ ...JOB, body: body(request) })
    await claimed(store, 1)
    const at = Date.now() + 60_000
    await store.endAttempt(job.id, { ...OK, status: 429 }, { next: 'retry', at })
    expect(await store.cancel('w', job.id)).toMatchObject({ state: 'cancelled' })
    await vi.waitFor(
      async () => expect((await store.dueDeliveries(10)).map((j) => j.id)).toEqual([job.id]),
      { timeout: 10_000, interval: 50 },
    )
  })
})
