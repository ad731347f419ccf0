import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { verifyWebhook } from '@fairlane/jobs'
import { startNats, startRedis, startUpstream } from '@fairlane/testing'
import { killAllNodeProcesses, startNodeProcess } from './cluster-harness.ts'
import { bearer, hashKeySecret } from './node-harness.ts'

const KEY = 'fl_jobs_cluster'
const SECRET = 'whsec_' + Buffer.from('cluster jobs webhook secret').toString('base64')
const JOBS = 1000
const ADMIN_TOKEN = 'jobs-cluster-admin-token-0123456789'

afterAll(killAllNodeProcesses)

describe('jobs in a cluster', () => {
  it(`with ${JOBS} jobs accepted, SIGKILL of the worker mid-run loses none: another worker delivers every webhook`, async () => {
    const [nats, redis, api, hooks] = await Promise.all([
      startNats({ jetstream: true }),
      startRedis(),
      // A short wait per call keeps attempts in flight when the worker dies.
      startUpstream(),
      startUpstream(),
    ])
    api.behave(() => ({ kind: 'delay', ms: 5 }))
    const dir = await mkdtemp(join(tmpdir(), 'fairlane-jobs-cluster-'))
    const config = (level: string) => ({
      logging: { level },
      jobs: {
        pollMs: 50,
        perKeyConcurrency: 64,
        // A dead worker's jobs go to another worker 2 s after its last extension.
        cluster: { ackWaitMs: 2_000 },
        webhooks: { initialDelayMs: 100, maxDelayMs: 500 },
      },
      targets: {
        echo: { endpoints: [{ url: api.url }], allowPrivateAddresses: true },
        hooks: { endpoints: [{ url: hooks.url }], allowPrivateAddresses: true },
      },
      workspaces: {
        w: {
          targets: ['echo', 'hooks'],
          keys: [{ id: 'k', hash: hashKeySecret(KEY) }],
          webhookSecrets: [SECRET],
        },
      },
    })
    const configPath = join(dir, 'fairlane.yaml')
    await writeFile(configPath, stringify(config('warn')))
    // Where the start lines say what each node does with jobs.
    const startLinesPath = join(dir, 'fairlane-info.yaml')
    await writeFile(startLinesPath, stringify(config('info')))
    const env = (roles: string) => ({
      FAIRLANE_NATS_URL: nats.url,
      FAIRLANE_REDIS_URL: redis.url,
      FAIRLANE_ROLES: roles,
    })
    const [front, actor] = await Promise.all([
      startNodeProcess({ configPath: startLinesPath, nodeId: 'front', env: env('ingress') }),
      startNodeProcess({ configPath: startLinesPath, nodeId: 'actor', env: env('actor') }),
    ])
    // The ingress node opens the job store but takes no work; the actor node has no store.
    await expect
      .poll(() => front.output())
      .toMatch(/"worker":false,"msg":"job store opened \(JetStream\)"/)
    await expect.poll(() => actor.output()).toMatch(/"msg":"fairlane started"/)
    expect(actor.output()).not.toMatch(/job store/)
    const ids = () => new Set(hooks.requests.map((r) => String(r.headers['webhook-id'])))

    // Accepted by an ingress-only node, which runs none of them.
    const agent = new Agent({ connections: 32 })
    const accepted: string[] = []
    for (let i = 0; i < JOBS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const response = await request(`${front.proxyUrl}/v1/jobs`, {
            dispatcher: agent,
            method: 'POST',
            headers: { ...bearer(KEY), 'content-type': 'application/json' },
            body: JSON.stringify({
              request: { method: 'POST', target: 'echo', path: `/orders/${i + j}` },
              webhook: { target: 'hooks', path: '/fairlane' },
            }),
          })
          expect(response.statusCode).toBe(202)
          return ((await response.body.json()) as { id: string }).id
        }),
      )
      accepted.push(...batch)
    }
    expect(api.hits).toBe(0)

    const first = await startNodeProcess({ configPath, nodeId: 'worker-1', env: env('worker') })
    const deadline = Date.now() + 60_000
    while (ids().size < JOBS / 5 && Date.now() < deadline) await sleep(10)
    await first.kill()
    const beforeKill = ids().size
    // Mid-run: some delivered, most not.
    expect(beforeKill).toBeGreaterThan(0)
    expect(beforeKill).toBeLessThan(JOBS)

    const second = await startNodeProcess({ configPath, nodeId: 'worker-2', env: env('worker') })
    while (ids().size < JOBS && Date.now() < deadline) await sleep(100)
    // Every accepted job's webhook came, deduplicated by webhook-id, and nothing else.
    expect([...ids()].sort()).toEqual([...accepted].sort())
    const states = new Set<string>()
    for (const id of accepted.slice(0, 50).concat(accepted.slice(-50))) {
      const response = await request(`${front.proxyUrl}/v1/jobs/${id}`, {
        dispatcher: agent,
        headers: bearer(KEY),
      })
      states.add(((await response.body.json()) as { state: string }).state)
    }
    expect(states).toEqual(new Set(['succeeded']))
    // At least once: an upstream call may repeat after the kill, always with the job's id.
    const called = new Set(api.requests.map((r) => r.headers['idempotency-key']))
    expect(called.size).toBe(JOBS)

    await agent.close()
    await Promise.all([second.stop(), front.stop(), actor.stop()])
    await Promise.all([api.close(), hooks.close(), nats.stop(), redis.stop()])
  }, 120_000)

  it('webhook secrets set through the admin API sign the webhooks of every node', async () => {
    const { front, hooks, stop } = await frontAndWorker()
    const put = await fetch(`${front.adminUrl}/admin/v1/workspaces/w`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...WORKSPACE, webhookSecrets: ['${HOOK_SECRET}'] }),
    })
    expect(put.status).toBe(200)
    expect((await submit(front, '/signed')).status).toBe(202)
    // The worker learnt the secret from the broadcast, as every node does.
    await expect.poll(() => hooks.hits, { timeout: 15_000 }).toBe(1)
    const [delivered] = hooks.requests
    const headers = Object.fromEntries(
      Object.entries(delivered?.headers ?? {}).map(([k, v]) => [k, String(v)]),
    )
    expect(
      verifyWebhook(headers, delivered?.body.toString() ?? '', [SECRET], Date.now() / 1000),
    ).toBe(true)
    await stop()
  }, 60_000)

  it('a job that meets 429 with Retry-After on a worker node is attempted again at that time and succeeds', async () => {
    const { front, api, hooks, stop } = await frontAndWorker([SECRET])
    let calls = 0
    api.behave(() =>
      ++calls === 1
        ? { kind: 'respond', status: 429, headers: { 'retry-after': '2' } }
        : { kind: 'echo' },
    )
    const { id } = (await (await submit(front, '/later')).json()) as { id: string }
    await expect.poll(() => hooks.hits, { timeout: 20_000 }).toBe(1)
    const job = (await (
      await fetch(`${front.proxyUrl}/v1/jobs/${id}`, { headers: bearer(KEY) })
    ).json()) as { state: string; attempts: { status: number; startedAt: string }[] }
    expect(job.state).toBe('succeeded')
    expect(job.attempts.map((a) => a.status)).toEqual([429, 200])
    const [first, second] = job.attempts.map((a) => Date.parse(a.startedAt))
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(1_900)
    await stop()
  }, 60_000)
})

const WORKSPACE = { targets: ['echo', 'hooks'] }

/** An ingress and actor node, a worker-only node, an upstream and a webhook receiver. */
async function frontAndWorker(webhookSecrets: string[] = []) {
  const [nats, redis, api, hooks] = await Promise.all([
    startNats({ jetstream: true }),
    startRedis(),
    startUpstream(),
    startUpstream(),
  ])
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-jobs-cluster-'))
  const configPath = join(dir, 'fairlane.yaml')
  await writeFile(
    configPath,
    stringify({
      logging: { level: 'warn' },
      jobs: { pollMs: 50 },
      targets: {
        echo: { endpoints: [{ url: api.url }], allowPrivateAddresses: true },
        hooks: { endpoints: [{ url: hooks.url }], allowPrivateAddresses: true },
      },
      workspaces: {
        w: { ...WORKSPACE, keys: [{ id: 'k', hash: hashKeySecret(KEY) }], webhookSecrets },
      },
    }),
  )
  const env = (roles: string) => ({
    FAIRLANE_NATS_URL: nats.url,
    FAIRLANE_REDIS_URL: redis.url,
    FAIRLANE_ROLES: roles,
    FAIRLANE_ADMIN_TOKEN: ADMIN_TOKEN,
    HOOK_SECRET: SECRET,
  })
  const [front, worker] = await Promise.all([
    startNodeProcess({ configPath, nodeId: 'front', env: env('ingress,actor') }),
    startNodeProcess({ configPath, nodeId: 'worker', env: env('worker') }),
  ])
  return {
    front,
    api,
    hooks,
    async stop() {
      await Promise.all([worker.stop(), front.stop()])
      await Promise.all([api.close(), hooks.close(), nats.stop(), redis.stop()])
    },
  }
}

function submit(front: { proxyUrl: string }, path: string): Promise<Response> {
  return fetch(`${front.proxyUrl}/v1/jobs`, {
    method: 'POST',
    headers: { ...bearer(KEY), 'content-type': 'application/json' },
    body: JSON.stringify({
      request: { method: 'GET', target: 'echo', path },
      webhook: { target: 'hooks', path: '/fairlane' },
    }),
  })
}
