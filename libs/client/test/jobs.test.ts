// Written against the jobs API contract (issue 15, point 1) before the server side is on this
// branch: vitest.config.ts leaves this file out until it is.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  FairlaneClient,
  NotFoundError,
  WaitTimeoutError,
  verifyWebhook,
  type Job,
} from '../src/index.ts'
import { startFairlane, type FairlaneProcess } from './fairlane-process.ts'
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.ts'

// The secrets of workspace demo in spec/test-vectors/fairlane-jobs.yaml: the first signs.
const SECRETS = [
  'whsec_BRIfLDlGU2BteoeUoa67yNXi7/wJFiMwPUpXZHF+i5g=',
  'whsec_CRorPE1eb4CRorPE1eb3CBkqO0xdbn+QobLD1OX2Bxg=',
]

let upstream: LoopbackUpstream
let receiver: WebhookReceiver
let fairlane: FairlaneProcess
let client: FairlaneClient

beforeAll(async () => {
  upstream = await startUpstream()
  receiver = await startWebhookReceiver()
  fairlane = await startFairlane(
    { ECHO_URL: upstream.url, HOOKS_URL: receiver.url },
    'fairlane-jobs.yaml',
  )
  client = new FairlaneClient({ baseUrl: fairlane.url, key: 'fl_demo_quickstart' })
})

afterAll(async () => {
  await fairlane?.close()
  await receiver?.close()
  await upstream?.close()
})

it('queues a request, waits for it, and reads the upstream answer from the job', async () => {
  const queued = await client.queueRequest(
    { method: 'POST', target: 'echo', path: '/orders', body: { sku: 'A-1' } },
    { tier: 'free', deadlineMs: 60_000 },
  )
  expect(queued.id).toEqual(expect.any(String))
  const job = await client.waitForJob(queued.id, { timeoutMs: 20_000, pollIntervalMs: 100 })
  expect(job).toMatchObject({ id: queued.id, state: 'succeeded' })
  expect(job.attempts.length).toBeGreaterThanOrEqual(1)
  expect(job.response?.status).toBe(200)
  const seen = upstream.requests.find((r) => r.url === '/orders')
  expect(JSON.parse(seen?.body.toString() ?? '')).toEqual({ sku: 'A-1' })
  // At-least-once execution: the job id goes upstream as Idempotency-Key.
  expect(seen?.headers['idempotency-key']).toBe(queued.id)
})

it('delivers the result to the webhook, signed so that verifyWebhook accepts it', async () => {
  const queued = await client.queueRequest(
    { method: 'GET', target: 'echo', path: '/hooked' },
    { webhook: { target: 'hooks', path: '/fairlane' } },
  )
  await expect
    .poll(() => receiver.deliveries.filter((d) => d.path === '/fairlane').length, {
      timeout: 20_000,
    })
    .toBeGreaterThanOrEqual(1)
  const delivery = receiver.deliveries.find((d) => d.path === '/fairlane')
  if (!delivery) throw new Error('no delivery')
  const payload = await verifyWebhook<Job>(delivery.headers, delivery.rawBody, SECRETS)
  expect(payload).toMatchObject({ id: queued.id, state: 'succeeded' })
  expect(delivery.headers['webhook-id']).toBe(queued.id)
  // Signed with the first secret: the second alone, once rotated out, would not verify it.
  await expect(
    verifyWebhook(delivery.headers, delivery.rawBody, SECRETS[0] ?? ''),
  ).resolves.toBeTruthy()
})

it('returns the same job for the same Idempotency-Key', async () => {
  const request = { method: 'POST', target: 'echo', path: '/once' }
  const first = await client.queueRequest(request, { idempotencyKey: 'sdk-once-1' })
  const second = await client.queueRequest(request, { idempotencyKey: 'sdk-once-1' })
  expect(second.id).toBe(first.id)
})

it('cancels a job not yet finished', async () => {
  upstream.behave((r) => (r.url === '/slow' ? { kind: 'delay', ms: 3_000 } : { kind: 'echo' }))
  try {
    const queued = await client.queueRequest({ method: 'GET', target: 'echo', path: '/slow' })
    await expect(client.redeliverJob(queued.id)).rejects.toMatchObject({ code: 'job_not_finished' })
    expect(await client.cancelJob(queued.id)).toMatchObject({ id: queued.id, state: 'cancelled' })
    expect((await client.getJob(queued.id)).state).toBe('cancelled')
    await expect(client.cancelJob(queued.id)).rejects.toBeInstanceOf(ConflictError)
  } finally {
    upstream.behave(() => ({ kind: 'echo' }))
  }
})

it('stops waiting at the timeout with the job as last read', async () => {
  upstream.behave((r) => (r.url === '/slower' ? { kind: 'delay', ms: 2_000 } : { kind: 'echo' }))
  try {
    const queued = await client.queueRequest({ method: 'GET', target: 'echo', path: '/slower' })
    const error = await client
      .waitForJob(queued.id, { timeoutMs: 300, pollIntervalMs: 100 })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(WaitTimeoutError)
    expect((error as WaitTimeoutError).job).toMatchObject({ id: queued.id })
    expect(['queued', 'running']).toContain((error as WaitTimeoutError).job.state)
  } finally {
    upstream.behave(() => ({ kind: 'echo' }))
  }
})

it('lists the workspace jobs by state, page by page', async () => {
  const ids = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const { id } = await client.queueRequest({ method: 'GET', target: 'echo', path: `/list/${i}` })
    await client.waitForJob(id, { timeoutMs: 20_000, pollIntervalMs: 100 })
    ids.add(id)
  }
  const listed = new Set<string>()
  let cursor: string | undefined
  do {
    const page = await client.listJobs({
      state: 'succeeded',
      limit: 2,
      ...(cursor ? { cursor } : {}),
    })
    expect(page.jobs.length).toBeLessThanOrEqual(2)
    for (const job of page.jobs) {
      expect(job.state).toBe('succeeded')
      listed.add(job.id)
    }
    cursor = page.cursor
  } while (cursor)
  for (const id of ids) expect(listed).toContain(id)
})

it('redelivers a finished job', async () => {
  const { id } = await client.queueRequest(
    { method: 'GET', target: 'echo', path: '/again' },
    { webhook: { target: 'hooks', path: '/again' } },
  )
  await client.waitForJob(id, { timeoutMs: 20_000, pollIntervalMs: 100 })
  expect(await client.redeliverJob(id)).toMatchObject({ id })
})

it('maps the API refusals to error classes', async () => {
  await expect(client.getJob('job_that_does_not_exist')).rejects.toMatchObject({
    constructor: NotFoundError,
    code: 'job_not_found',
  })
  const stranger = new FairlaneClient({ baseUrl: fairlane.url, key: 'fl_nobody' })
  await expect(
    stranger.queueRequest({ method: 'GET', target: 'echo', path: '/x' }),
  ).rejects.toBeInstanceOf(AuthenticationError)
  // Neither a target nor a url: nothing to call.
  await expect(client.queueRequest({ method: 'GET' })).rejects.toBeInstanceOf(BadRequestError)
  const request = { method: 'POST', target: 'echo', path: '/taken' }
  await client.queueRequest(request, { idempotencyKey: 'sdk-taken' })
  await expect(
    client.queueRequest({ ...request, body: { other: true } }, { idempotencyKey: 'sdk-taken' }),
  ).rejects.toMatchObject({ constructor: ConflictError, code: 'idempotency_conflict' })
})
