import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyWebhook } from '@fairlane/jobs'
import {
  freePort,
  startUpstream,
  type LoopbackUpstream,
  type RecordedRequest,
} from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, type TestNode } from './node-harness.ts'

const KEY = 'fl_jobs_1'
const OTHER_KEY = 'fl_jobs_other'
const SECOND_KEY = 'fl_jobs_second'
const PUBLIC_KEY = 'fl_jobs_public'
const NARROW_KEY = 'fl_jobs_narrow'
const SECRET = 'whsec_' + Buffer.from('a webhook secret of 32 bytes!!!!').toString('base64')
const running: { close(): Promise<void> }[] = []

afterEach(async () => {
  for (const thing of running.splice(0).reverse()) await thing.close()
})

async function upstream(): Promise<LoopbackUpstream> {
  const started = await startUpstream()
  running.push(started)
  return started
}

interface Setup {
  readonly node: TestNode
  readonly api: LoopbackUpstream
  readonly hooks: LoopbackUpstream
  readonly dataDir: string
}

/** A node with a target `echo` (the upstream) and a target `hooks` (the webhook receiver). */
async function setup(
  options: {
    jobs?: Record<string, unknown>
    echo?: Record<string, unknown>
    dataDir?: string
    /** More settings of key `k` (its limits). */
    key?: Record<string, unknown>
    /** More config, knowing the receiver's port. */
    more?: (hooks: LoopbackUpstream) => Record<string, unknown>
  } = {},
): Promise<Setup> {
  const api = await upstream()
  const hooks = await upstream()
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'fairlane-jobs-')))
  const node = await startNode({
    ...options.more?.(hooks),
    logging: { level: 'warn' },
    jobs: {
      dataDir,
      pollMs: 50,
      webhooks: { initialDelayMs: 100, maxDelayMs: 1_000, timeoutMs: 2_000 },
      ...options.jobs,
    },
    targets: {
      echo: {
        endpoints: [{ url: api.url }],
        allowPrivateAddresses: true,
        retry: { attempts: 1 },
        ...options.echo,
      },
      hooks: { endpoints: [{ url: hooks.url }], allowPrivateAddresses: true },
    },
    workspaces: {
      w: {
        targets: ['echo', 'hooks'],
        keys: [
          { id: 'k', hash: hashKeySecret(KEY), ...options.key },
          { id: 'k2', hash: hashKeySecret(SECOND_KEY) },
        ],
        webhookSecrets: [SECRET],
      },
      other: { targets: ['echo'], keys: [{ id: 'o', hash: hashKeySecret(OTHER_KEY) }] },
      pub: {
        targets: ['echo'],
        hosts: ['*'],
        keys: [{ id: 'p', hash: hashKeySecret(PUBLIC_KEY) }],
        webhookSecrets: [SECRET],
      },
      narrow: {
        targets: ['echo'],
        hosts: ['api.example.com'],
        keys: [{ id: 'n', hash: hashKeySecret(NARROW_KEY) }],
        webhookSecrets: [SECRET],
      },
    },
  })
  running.push(node)
  return { node, api, hooks, dataDir }
}

const JOB = {
  request: {
    method: 'POST',
    target: 'echo',
    path: '/orders',
    headers: { 'x-order': '42' },
    body: { item: 'book' },
  },
  webhook: { target: 'hooks', path: '/fairlane' },
  tier: 'free',
  deadlineMs: 600_000,
}

function post(n: TestNode, body: unknown, headers: Record<string, string> = {}, key = KEY) {
  return n.proxy('/v1/jobs', {
    method: 'POST',
    headers: { ...bearer(key), 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

async function getJob(n: TestNode, id: string, key = KEY): Promise<Record<string, unknown>> {
  const response = await n.proxy(`/v1/jobs/${id}`, { headers: bearer(key) })
  expect(response.status).toBe(200)
  return (await response.json()) as Record<string, unknown>
}

async function until<T>(what: () => Promise<T | undefined>, withinMs = 15_000): Promise<T> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const value = await what()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(50)
  }
}

async function finished(n: TestNode, id: string): Promise<Record<string, unknown>> {
  return until(async () => {
    const job = await getJob(n, id)
    return ['succeeded', 'failed', 'cancelled'].includes(String(job['state'])) ? job : undefined
  })
}

function headersOf(r: RecordedRequest): Record<string, string> {
  return r.headers as Record<string, string>
}

describe('jobs API', () => {
  it('runs a job through its lane, keeps the answer, and delivers it signed to the webhook', async () => {
    const { node, api, hooks } = await setup()
    const response = await post(node, JOB)
    expect(response.status).toBe(202)
    const { id } = (await response.json()) as { id: string }
    expect(response.headers.get('location')).toBe(`/v1/jobs/${id}`)
    const job = await finished(node, id)
    expect(job['state']).toBe('succeeded')
    const answer = job['response'] as {
      status: number
      body: { url: string; headers: Record<string, string> }
    }
    expect(answer.status).toBe(200)
    expect(answer.body.url).toBe('/orders')
    // The job id is the upstream's Idempotency-Key; the Fairlane key never reaches it.
    const seen = api.requests[0]
    expect(seen?.headers['idempotency-key']).toBe(id)
    expect(seen?.headers['x-order']).toBe('42')
    expect(seen?.headers['authorization']).toBeUndefined()
    expect(JSON.parse(seen?.body.toString() ?? '')).toEqual({ item: 'book' })
    expect(job['attempts']).toHaveLength(1)

    const delivered = await until(async () => hooks.requests[0])
    expect(delivered.url).toBe('/fairlane')
    const h = headersOf(delivered)
    expect(h['webhook-id']).toBe(id)
    const body = delivered.body.toString()
    expect(verifyWebhook(h, body, [SECRET], Math.floor(Date.now() / 1000))).toBe(true)
    expect(verifyWebhook(h, body + ' ', [SECRET], Math.floor(Date.now() / 1000))).toBe(false)
    expect(JSON.parse(body)).toMatchObject({ id, state: 'succeeded', response: { status: 200 } })
    const after = await until(async () => {
      const j = await getJob(node, id)
      const [hook] = j['webhooks'] as { state: string }[]
      return hook?.state === 'delivered' ? j : undefined
    })
    expect(after['webhooks']).toMatchObject([{ target: 'hooks', state: 'delivered', attempts: 1 }])
  })

  it('a 429 with Retry-After twice: each attempt waits the named time, then the job succeeds', async () => {
    // The target's own retries are on: the job still waits in the store, not in a worker slot.
    const { node, api } = await setup({ echo: { retry: { attempts: 3 } } })
    let calls = 0
    api.behave(() =>
      ++calls <= 2
        ? { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: 'slow down' }
        : { kind: 'echo' },
    )
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    const job = await finished(node, id)
    expect(job['state']).toBe('succeeded')
    const attempts = job['attempts'] as { status: number }[]
    expect(attempts.map((a) => a.status)).toEqual([429, 429, 200])
    const at = api.requests.map((r) => r.receivedAt)
    expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(950)
    expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(950)
    // Every attempt is the same operation to the upstream.
    expect(new Set(api.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([id]))
  })

  it('an answer other than 408/425/429/5xx is final: a 404 fails the job at once', async () => {
    const { node, api } = await setup()
    api.behave(() => ({ kind: 'respond', status: 404, body: 'no such order' }))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    const job = await finished(node, id)
    expect(job).toMatchObject({
      state: 'failed',
      response: { status: 404, body: 'no such order' },
      error: { code: 'upstream_status' },
    })
    expect(api.hits).toBe(1)
  })

  it('a webhook receiver that fails three times gets the same delivery again until it takes it', async () => {
    const { node, hooks } = await setup()
    let tries = 0
    hooks.behave(() =>
      ++tries <= 3 ? { kind: 'respond', status: 500 } : { kind: 'respond', status: 204 },
    )
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    const job = await until(async () => {
      const j = await getJob(node, id)
      const [hook] = j['webhooks'] as { state: string }[]
      return hook?.state === 'delivered' ? j : undefined
    })
    expect(job['webhooks']).toMatchObject([{ state: 'delivered', attempts: 4, lastStatus: 204 }])
    expect(hooks.requests).toHaveLength(4)
    // One message: the receiver deduplicates by webhook-id.
    expect(new Set(hooks.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([id]))
    // Backoff: 100 ms, then ×4 (±20%).
    const at = hooks.requests.map((r) => r.receivedAt)
    expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(300)
  })

  it('a delivery failing past its maximum age is dead-lettered, and redeliver sends it again', async () => {
    const { node, hooks } = await setup({
      jobs: { webhooks: { initialDelayMs: 200, maxAgeMs: 1_000 } },
    })
    hooks.behave(() => ({ kind: 'respond', status: 503 }))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    await until(async () => {
      const j = await getJob(node, id)
      return (j['webhooks'] as { state: string }[])[0]?.state === 'dead' ? j : undefined
    })
    const tries = hooks.hits
    expect(tries).toBeGreaterThanOrEqual(2)
    hooks.behave(() => ({ kind: 'respond', status: 200 }))
    const again = await node.proxy(`/v1/jobs/${id}/redeliver`, {
      method: 'POST',
      headers: bearer(KEY),
    })
    expect(again.status).toBe(202)
    await until(async () => {
      const j = await getJob(node, id)
      return (j['webhooks'] as { state: string }[])[0]?.state === 'delivered' ? j : undefined
    })
    expect(hooks.hits).toBe(tries + 1)
  })

  it('the same Idempotency-Key gives the same job; another body under it is refused', async () => {
    const { node } = await setup()
    const first = await post(node, JOB, { 'idempotency-key': 'order-42' })
    const second = await post(node, JOB, { 'idempotency-key': 'order-42' })
    const a = (await first.json()) as { id: string }
    const b = (await second.json()) as { id: string }
    expect(second.status).toBe(202)
    expect(b.id).toBe(a.id)
    expect(second.headers.get('idempotent-replayed')).toBe('true')
    const other = await post(
      node,
      { ...JOB, deadlineMs: 700_000 },
      { 'idempotency-key': 'order-42' },
    )
    expect(other.status).toBe(422)
    expect(await other.json()).toMatchObject({ code: 'idempotency_conflict' })
    // Another workspace's key of the same name is its own.
    const elsewhere = await post(
      node,
      { request: JOB.request },
      { 'idempotency-key': 'order-42' },
      OTHER_KEY,
    )
    expect(((await elsewhere.json()) as { id: string }).id).not.toBe(a.id)
  })

  it('cancels a waiting job; a finished job cannot be cancelled; other workspaces see nothing', async () => {
    const { node, api, hooks } = await setup()
    api.behave(() => ({ kind: 'respond', status: 429, headers: { 'retry-after': '60' } }))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    await until(
      async () => ((await getJob(node, id))['attempts'] as unknown[]).length === 1 || undefined,
    )
    expect(await node.proxy(`/v1/jobs/${id}`, { headers: bearer(OTHER_KEY) })).toMatchObject({
      status: 404,
    })
    const cancel = await node.proxy(`/v1/jobs/${id}`, { method: 'DELETE', headers: bearer(KEY) })
    expect(cancel.status).toBe(200)
    expect(await cancel.json()).toMatchObject({ id, state: 'cancelled' })
    const twice = await node.proxy(`/v1/jobs/${id}`, { method: 'DELETE', headers: bearer(KEY) })
    expect(twice.status).toBe(409)
    expect(await twice.json()).toMatchObject({ code: 'job_finished' })
    // The cancelled job's document goes to its webhook too.
    const delivered = await until(async () => hooks.requests[0])
    expect(JSON.parse(delivered.body.toString())).toMatchObject({ id, state: 'cancelled' })
    expect(api.hits).toBe(1)
  })

  it('cancelling a running job aborts its upstream call', async () => {
    const { node, api } = await setup()
    api.behave(() => ({ kind: 'delay', ms: 10_000 }))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    await until(async () => (api.inFlight === 1 ? true : undefined))
    const cancel = await node.proxy(`/v1/jobs/${id}`, { method: 'DELETE', headers: bearer(KEY) })
    expect(await cancel.json()).toMatchObject({ state: 'cancelled' })
    await until(async () => (api.inFlight === 0 ? true : undefined), 3_000)
    // The aborted attempt is not recorded over the cancellation.
    await sleep(200)
    expect(await getJob(node, id)).toMatchObject({ state: 'cancelled', attempts: [] })
  })

  it('lists a workspace’s jobs newest first, by state, a page at a time', async () => {
    const { node, api } = await setup()
    api.behave(() => ({ kind: 'respond', status: 429, headers: { 'retry-after': '60' } }))
    const ids: string[] = []
    for (let i = 0; i < 3; i++)
      ids.push(((await (await post(node, { request: JOB.request })).json()) as { id: string }).id)
    await node.proxy(`/v1/jobs/${ids[0]}`, { method: 'DELETE', headers: bearer(KEY) })
    const page1 = (await (
      await node.proxy('/v1/jobs?limit=2', { headers: bearer(KEY) })
    ).json()) as {
      jobs: { id: string }[]
      cursor: string
    }
    expect(page1.jobs.map((j) => j.id)).toEqual([ids[2], ids[1]])
    const page2 = (await (
      await node.proxy(`/v1/jobs?limit=2&cursor=${page1.cursor}`, { headers: bearer(KEY) })
    ).json()) as { jobs: { id: string }[]; cursor?: string }
    expect(page2.jobs.map((j) => j.id)).toEqual([ids[0]])
    expect(page2.cursor).toBeUndefined()
    const cancelled = (await (
      await node.proxy('/v1/jobs?state=cancelled', { headers: bearer(KEY) })
    ).json()) as {
      jobs: { id: string }[]
    }
    expect(cancelled.jobs.map((j) => j.id)).toEqual([ids[0]])
    const none = (await (await node.proxy('/v1/jobs', { headers: bearer(OTHER_KEY) })).json()) as {
      jobs: unknown[]
    }
    expect(none.jobs).toEqual([])
  })

  it('refuses what it cannot run, as problem+json, before accepting anything', async () => {
    const { node } = await setup()
    const cases: [unknown, string, number, Record<string, string>?][] = [
      [{ request: { target: 'echo' }, bogus: 1 }, 'bad_request', 400],
      [{ request: { target: 'echo', url: 'https://example.com/' } }, 'bad_request', 400],
      [{ request: { target: 'nope', path: '/' } }, 'forbidden_target', 403],
      [{ request: { url: 'https://example.com/' } }, 'destination_blocked', 403],
      [{ ...JOB, tier: 'reserved' }, 'tier_not_allowed', 403],
      [{ ...JOB, tier: 'gold' }, 'bad_request', 400],
      [{ request: { ...JOB.request, headers: { 'x-leak': KEY } } }, 'bad_request', 400],
      [{ request: JOB.request, webhooks: [JOB.webhook], quorum: 2 }, 'bad_request', 400],
    ]
    for (const [body, code, status] of cases) {
      const response = await post(node, body)
      expect({ body, status: response.status }).toEqual({ body, status })
      expect(response.headers.get('content-type')).toBe('application/problem+json')
      expect(await response.json()).toMatchObject({ code })
    }
    // The other workspace has no webhook secret to sign with.
    const unsigned = await post(node, JOB, {}, OTHER_KEY)
    expect(unsigned.status).toBe(403)
    expect((await node.proxy('/v1/jobs', { method: 'POST' })).status).toBe(401)
    expect((await node.proxy('/v1/jobs/job_nope', { headers: bearer(KEY) })).status).toBe(404)
  })
})

describe('metered targets', () => {
  it('a job spends its answer’s real cost from the key’s budget, as a request does', async () => {
    const { node, api } = await setup({
      echo: { cost: { fromResponse: { json: 'usage.total_tokens' } } },
      key: { limits: { unit: 'cost', window: { limit: 600, seconds: 600 } } },
      // Over the limit a request is refused at once rather than queued.
      more: () => ({ tiers: { free: { priority: 0, maxWaitMs: 0 } } }),
    })
    api.behave(() => ({
      kind: 'respond',
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ usage: { total_tokens: 700 } }),
    }))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    expect(await finished(node, id)).toMatchObject({ state: 'succeeded' })
    // The job's 700 tokens filled the window of 600: nothing more passes, job or request.
    const request = await node.proxy('/t/echo/more', { headers: bearer(KEY) })
    await request.arrayBuffer()
    expect(request.status).toBe(429)
    const next = (await (await post(node, JOB)).json()) as { id: string }
    const refused = await until(async () => {
      const job = await getJob(node, next.id)
      return (job['attempts'] as unknown[]).length > 0 ? job : undefined
    })
    expect(refused['attempts']).toMatchObject([{ error: 'rate_limited' }])
    expect(api.hits).toBe(1)
  })
})

describe('approved hosts', () => {
  it('a URL off the workspace’s approved hosts is refused at submission, as X-Fairlane-Url is', async () => {
    const { node } = await setup()
    const cases: [unknown, number][] = [
      [{ request: { url: 'https://other.example.org/x' } }, 403],
      [{ request: { url: 'http://api.example.com/x' } }, 403],
      [{ request: JOB.request, webhook: { url: 'https://other.example.org/hook' } }, 403],
      [{ request: JOB.request, onSuccess: { request: { url: 'https://evil.example/' } } }, 403],
    ]
    for (const [body, status] of cases) {
      const response = await post(node, body, {}, NARROW_KEY)
      expect({ body, status: response.status }).toEqual({ body, status })
      expect(await response.json()).toMatchObject({ code: 'destination_blocked' })
    }
    const list = await node.proxy('/v1/jobs', { headers: bearer(NARROW_KEY) })
    expect(await list.json()).toMatchObject({ jobs: [] })
    // The same code as the proxy port's answer to that URL.
    const direct = await node.proxy('/', {
      headers: { ...bearer(NARROW_KEY), 'x-fairlane-url': 'https://other.example.org/x' },
    })
    expect({ status: direct.status, body: await direct.json() }).toMatchObject({
      status: 403,
      body: { code: 'destination_blocked' },
    })
    // An approved host is accepted: its address is looked up and checked at each attempt.
    const approved = await post(
      node,
      { request: { url: 'https://api.example.com/x' } },
      {},
      NARROW_KEY,
    )
    expect(approved.status).toBe(202)
  })
})

describe('chains and several webhooks', () => {
  it('onSuccess runs after success with the previous answer in its templates, linked by the chain id', async () => {
    const { node, api } = await setup()
    api.behave((r) =>
      r.url === '/orders'
        ? {
            kind: 'respond',
            status: 201,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ order: { id: 'o-7', total: 12.5 } }),
          }
        : { kind: 'echo' },
    )
    const { id } = (await (
      await post(node, {
        request: JOB.request,
        onSuccess: {
          request: {
            target: 'echo',
            path: '/orders/{{previous.response.body.order.id}}/receipt',
            headers: { 'x-parent-status': '{{previous.response.status}}' },
            body: { total: '{{previous.response.body.order.total}}', parent: '{{previous.id}}' },
          },
        },
        onFailure: { request: { target: 'echo', path: '/alert' } },
      })
    ).json()) as { id: string }
    const first = await finished(node, id)
    const [next] = first['followUps'] as string[]
    expect(next).toBeDefined()
    const second = await finished(node, next ?? '')
    expect(second).toMatchObject({ state: 'succeeded', chainId: id, parentId: id })
    const receipt = api.requests.find((r) => r.url.endsWith('/receipt'))
    expect(receipt?.url).toBe('/orders/o-7/receipt')
    expect(receipt?.headers['x-parent-status']).toBe('201')
    expect(JSON.parse(receipt?.body.toString() ?? '')).toEqual({ total: 12.5, parent: id })
    expect(api.requests.some((r) => r.url === '/alert')).toBe(false)
  })

  it('onFailure runs after a failure, with the failed answer in its templates', async () => {
    const { node, api } = await setup()
    api.behave((r) => (r.url === '/orders' ? { kind: 'respond', status: 400 } : { kind: 'echo' }))
    const chained = {
      request: JOB.request,
      onFailure: { request: { target: 'echo', path: '/alert/{{previous.response.status}}' } },
    }
    const { id } = (await (await post(node, chained)).json()) as { id: string }
    const failed = await finished(node, id)
    expect(failed['state']).toBe('failed')
    await finished(node, (failed['followUps'] as string[])[0] ?? '')
    expect(api.requests.map((r) => r.url)).toEqual(['/orders', '/alert/400'])
  })

  it('several webhooks with a quorum: delivered when that many took it, each retried on its own', async () => {
    const { node, hooks } = await setup()
    hooks.behave((r) =>
      r.url === '/down' ? { kind: 'respond', status: 500 } : { kind: 'respond', status: 200 },
    )
    const { id } = (await (
      await post(node, {
        request: JOB.request,
        webhooks: [
          { target: 'hooks', path: '/a' },
          { target: 'hooks', path: '/down' },
          { target: 'hooks', path: '/b' },
        ],
        quorum: 2,
      })
    ).json()) as { id: string }
    const job = await until(async () => {
      const j = await getJob(node, id)
      return j['delivery'] === 'delivered' ? j : undefined
    })
    expect((job['webhooks'] as { state: string }[]).map((w) => w.state)).toEqual([
      'delivered',
      'pending',
      'delivered',
    ])
    const signed = hooks.requests.filter((r) => r.url !== '/down')
    expect(new Set(signed.map((r) => r.headers['webhook-id']))).toEqual(new Set([id]))
  })
})

describe('race', () => {
  it('races the regions: one down, one slow, one good; the good answer wins at once and the slow call is aborted', async () => {
    const slow = await upstream()
    slow.behave(() => ({ kind: 'delay', ms: 5_000 }))
    const good = await upstream()
    const down = await freePort()
    const { node } = await setup({
      echo: {
        // Without the race every attempt goes to the slow region first (the others are standbys).
        endpoints: [
          { url: slow.url, region: 'eu', weight: 1000 },
          { url: `http://127.0.0.1:${down}`, region: 'ap', weight: 0 },
          { url: good.url, region: 'us', weight: 0 },
        ],
        retry: { attempts: 1 },
      },
    })
    const startedAt = Date.now()
    const { id } = (await (
      await post(node, { request: JOB.request, race: { regions: ['eu', 'us'] } })
    ).json()) as { id: string }
    const job = await finished(node, id)
    expect(Date.now() - startedAt).toBeLessThan(4_000)
    expect(job).toMatchObject({ state: 'succeeded', response: { status: 200 } })
    expect((job['attempts'] as { region: string }[])[0]?.region).toBe('us')
    expect(good.hits).toBe(1)
    await until(async () => (slow.inFlight === 0 ? true : undefined))
    const unknown = await post(node, { request: JOB.request, race: { regions: ['eu', 'mars'] } })
    expect(unknown.status).toBe(400)
  })

  it('with one raced region down the other answers', async () => {
    const good = await upstream()
    const down = await freePort()
    const { node } = await setup({
      echo: {
        endpoints: [
          { url: `http://127.0.0.1:${down}`, region: 'eu', weight: 1000 },
          { url: good.url, region: 'us', weight: 0 },
        ],
      },
    })
    const { id } = (await (
      await post(node, { request: JOB.request, race: { regions: ['eu', 'us'] } })
    ).json()) as { id: string }
    const job = await finished(node, id)
    expect(job).toMatchObject({ state: 'succeeded', response: { status: 200 } })
    expect(job['attempts']).toHaveLength(1)
  })

  it('races named endpoints: of three, the two named are raced and the good one wins', async () => {
    const slow = await upstream()
    slow.behave(() => ({ kind: 'delay', ms: 5_000 }))
    const good = await upstream()
    const spare = await upstream()
    const { node } = await setup({
      echo: {
        // Without the race every attempt goes to the slow endpoint (the others are standbys).
        endpoints: [
          { url: slow.url, weight: 1000 },
          { url: spare.url, weight: 0 },
          { url: good.url, weight: 0 },
        ],
        retry: { attempts: 1 },
      },
    })
    const startedAt = Date.now()
    const { id } = (await (
      await post(node, { request: JOB.request, race: { endpoints: [slow.url, good.url] } })
    ).json()) as { id: string }
    const job = await finished(node, id)
    expect(Date.now() - startedAt).toBeLessThan(4_000)
    expect(job).toMatchObject({ state: 'succeeded', response: { status: 200 } })
    expect(good.hits).toBe(1)
    expect(spare.hits).toBe(0)
    await until(async () => (slow.inFlight === 0 ? true : undefined))
    const unknown = await post(node, {
      request: JOB.request,
      race: { endpoints: [slow.url, 'http://127.0.0.1:1'] },
    })
    expect(unknown.status).toBe(400)
    const both = await post(node, {
      request: JOB.request,
      race: { regions: ['eu', 'us'], endpoints: [slow.url, good.url] },
    })
    expect(both.status).toBe(400)
  })
})

describe('tiers', () => {
  it('a job waits at its own tier, below its key’s: a request of the key queued after it goes first', async () => {
    const { node, api } = await setup({
      key: { tier: 'paid' },
      // One call at a time, so tickets queue in the lane; no minimum share, so strict priority
      // alone decides.
      echo: { limits: { concurrency: 1 } },
      more: () => ({
        tiers: {
          paid: { priority: 1, minShare: 0, maxWaitMs: 30_000 },
          free: { priority: 2, minShare: 0, maxWaitMs: 30_000 },
        },
      }),
    })
    api.behave((r) => (r.url === '/hold' ? { kind: 'delay', ms: 1_500 } : { kind: 'echo' }))
    const holding = node.proxy('/t/echo/hold', { headers: bearer(KEY) })
    await until(async () => (api.hits === 1 ? true : undefined))
    const { id } = (await (await post(node, { ...JOB, tier: 'free' })).json()) as { id: string }
    // The job's attempt is under way: its ticket waits for the held call.
    await until(async () => ((await getJob(node, id))['state'] === 'running' ? true : undefined))
    await sleep(100)
    const after = node.proxy('/t/echo/after', { headers: bearer(KEY) })
    expect((await holding).status).toBe(200)
    expect((await after).status).toBe(200)
    await finished(node, id)
    expect(api.requests.map((r) => r.url)).toEqual(['/hold', '/after', '/orders'])
  })
})

describe('beside inbound routes', () => {
  it('a route whose prefix covers /v1/jobs wins; elsewhere the jobs API answers', async () => {
    const { node, api } = await setup({
      more: () => ({
        routes: {
          own: { target: 'echo', pathPrefix: '/v1/jobs/own', callers: { header: 'x-api-key' } },
        },
      }),
    })
    const routed = await node.proxy('/v1/jobs/own/1', { headers: { 'x-api-key': 'customer-1' } })
    expect(routed.status).toBe(200)
    expect(api.requests.map((r) => r.url)).toEqual(['/v1/jobs/own/1'])
    expect((await post(node, JOB)).status).toBe(202)
  })
})

describe('a store that cannot be opened', () => {
  it('answers 503 jobs_unavailable and accepts nothing; proxying goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fairlane-jobs-'))
    const file = join(dir, 'a-file')
    await writeFile(file, '')
    const { node } = await setup({ dataDir: join(file, 'data') })
    const refused = await post(node, JOB)
    expect(refused.status).toBe(503)
    expect(await refused.json()).toMatchObject({ code: 'jobs_unavailable', stage: 'jobs' })
    expect((await node.proxy('/t/echo/x', { headers: bearer(KEY) })).status).toBe(200)
  })
})

describe('webhook destinations', () => {
  it('a webhook url on a private address is never called, even on an approved host pattern', async () => {
    // Scheme and port allowed: only the address rule stands between the job and the receiver.
    const { node, hooks } = await setup({
      more: (receiver) => ({ destinations: { allowHttp: true, allowedPorts: [receiver.port] } }),
    })
    const { id } = (await (
      await post(
        node,
        { request: JOB.request, webhook: { url: `http://127.0.0.1:${hooks.port}/hook` } },
        {},
        PUBLIC_KEY,
      )
    ).json()) as { id: string }
    const job = await until(async () => {
      const response = await node.proxy(`/v1/jobs/${id}`, { headers: bearer(PUBLIC_KEY) })
      const j = (await response.json()) as { webhooks: { attempts: number; lastError?: string }[] }
      return (j.webhooks[0]?.attempts ?? 0) >= 1 ? j : undefined
    })
    expect(job.webhooks[0]?.lastError).toMatch(/^destination_blocked: .*(private|loopback)/)
    expect(hooks.hits).toBe(0)
  })
})

describe('webhook slots', () => {
  it('receivers that hang hold their slots only: a new job’s delivery still goes out', async () => {
    const { node, hooks } = await setup({
      jobs: { webhooks: { initialDelayMs: 100, maxDelayMs: 1_000, timeoutMs: 60_000 } },
    })
    hooks.behave((r) => (r.url === '/hang' ? { kind: 'delay', ms: 120_000 } : { kind: 'echo' }))
    // More hanging deliveries than half the node's 32 slots: the oldest due rows are theirs.
    const hanging = { ...JOB, webhook: { target: 'hooks', path: '/hang' } }
    for (let i = 0; i < 20; i++) expect((await post(node, hanging)).status).toBe(202)
    await until(async () => (hooks.inFlight === 20 ? true : undefined))
    const { id } = (await (await post(node, JOB)).json()) as { id: string }
    const delivered = await until(
      async () => hooks.requests.find((r) => r.url === '/fairlane'),
      20_000,
    )
    expect(delivered.headers['webhook-id']).toBe(id)
  })
})

describe('worker slots', () => {
  it('one key’s backlog of due jobs does not hold back another key’s job', async () => {
    const { node, api } = await setup({ jobs: { concurrency: 8, perKeyConcurrency: 4 } })
    api.behave((r) => (r.url === '/slow' ? { kind: 'delay', ms: 300 } : { kind: 'echo' }))
    const flood = { request: { method: 'GET', target: 'echo', path: '/slow' } }
    await Promise.all(Array.from({ length: 100 }, () => post(node, flood)))
    const quick = await post(
      node,
      { request: { method: 'GET', target: 'echo', path: '/quick' } },
      {},
      SECOND_KEY,
    )
    const answer = (await quick.json()) as { id: string }
    expect({ status: quick.status, answer }).toMatchObject({ status: 202 })
    const job = await finished(node, answer.id)
    expect(job['state']).toBe('succeeded')
    // Most of the flood is still waiting: the quick job did not queue behind it.
    expect(api.requests.filter((r) => r.url === '/slow').length).toBeLessThan(50)
  })
})

describe('jobs survive a restart', () => {
  it('a job waiting for its time when the node stops runs when a node starts on the same data directory', async () => {
    const first = await setup()
    first.api.behave(() => ({ kind: 'respond', status: 429, headers: { 'retry-after': '2' } }))
    const { id } = (await (await post(first.node, JOB)).json()) as { id: string }
    await until(
      async () =>
        ((await getJob(first.node, id))['attempts'] as unknown[]).length === 1 || undefined,
    )
    await first.node.close()
    const second = await setup({ dataDir: first.dataDir })
    const job = await finished(second.node, id)
    expect(job['state']).toBe('succeeded')
    expect(job['attempts']).toHaveLength(2)
    expect(second.api.hits).toBe(1)
  })
  it('a stop lets an attempt in flight finish within the grace period and records it', async () => {
    const first = await setup()
    first.api.behave(() => ({ kind: 'delay', ms: 700 }))
    const { id } = (await (await post(first.node, JOB)).json()) as { id: string }
    await until(async () => (first.api.inFlight === 1 ? true : undefined))
    await first.node.close()
    const second = await setup({ dataDir: first.dataDir })
    const job = await getJob(second.node, id)
    expect(job).toMatchObject({ state: 'succeeded', response: { status: 200 } })
    expect(first.api.hits + second.api.hits).toBe(1)
  })
})
