import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startUpstream } from '@fairlane/testing'
import { killAllNodeProcesses, startNodeProcess } from './cluster-harness.ts'
import { bearer, hashKeySecret } from './node-harness.ts'

const KEY = 'fl_jobs_crash'
const SECRET = 'whsec_' + Buffer.from('crash test webhook secret').toString('base64')
const JOBS = 200

afterAll(killAllNodeProcesses)

describe('embedded jobs and SIGKILL', () => {
  it(`with ${JOBS} jobs accepted and waiting, SIGKILL loses none: after a restart every webhook arrives`, async () => {
    const api = await startUpstream()
    // Until the kill the upstream asks every job to come back in 2 s: they all wait.
    api.behave(() => ({ kind: 'respond', status: 429, headers: { 'retry-after': '2' } }))
    const hooks = await startUpstream()
    const dir = await mkdtemp(join(tmpdir(), 'fairlane-jobs-crash-'))
    const configPath = join(dir, 'fairlane.yaml')
    await writeFile(
      configPath,
      stringify({
        logging: { level: 'warn' },
        jobs: { pollMs: 50, webhooks: { initialDelayMs: 100, maxDelayMs: 500 } },
        targets: {
          echo: { endpoints: [{ url: api.url }], allowPrivateAddresses: true },
          hooks: { endpoints: [{ url: hooks.url }], allowPrivateAddresses: true },
        },
        workspaces: {
          w: {
            targets: ['echo', 'hooks'],
            // The lane lets 80 a second through.
            keys: [{ id: 'k', hash: hashKeySecret(KEY), limits: { rate: { rps: 80, burst: 1 } } }],
            webhookSecrets: [SECRET],
          },
        },
      }),
    )
    const env = { FAIRLANE_DATA_DIR: join(dir, 'data') }
    const first = await startNodeProcess({ configPath, nodeId: 'embedded-1', env })
    const accepted: string[] = []
    for (let i = 0; i < JOBS; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, async (_, j) => {
          const response = await fetch(`${first.proxyUrl}/v1/jobs`, {
            method: 'POST',
            headers: { ...bearer(KEY), 'content-type': 'application/json' },
            body: JSON.stringify({
              request: { method: 'POST', target: 'echo', path: `/orders/${i + j}` },
              webhook: { target: 'hooks', path: '/fairlane' },
            }),
          })
          expect(response.status).toBe(202)
          return ((await response.json()) as { id: string }).id
        }),
      )
      accepted.push(...batch)
    }
    while (api.hits < 20) await sleep(20)
    await first.kill()
    expect(hooks.hits).toBe(0)
    api.behave(() => ({ kind: 'echo' }))

    const second = await startNodeProcess({ configPath, nodeId: 'embedded-2', env })
    const deadline = Date.now() + 60_000
    const ids = () => new Set(hooks.requests.map((r) => String(r.headers['webhook-id'])))
    while (ids().size < JOBS && Date.now() < deadline) await sleep(100)
    expect([...ids()].sort()).toEqual([...accepted].sort())
    const states = await Promise.all(
      accepted.map(async (id) => {
        const job = (await (
          await fetch(`${second.proxyUrl}/v1/jobs/${id}`, { headers: bearer(KEY) })
        ).json()) as { state: string }
        return job.state
      }),
    )
    expect(new Set(states)).toEqual(new Set(['succeeded']))
    // At least once: an upstream call may repeat after the kill, always with the job's id.
    const answered = api.requests.filter((r) => r.headers['idempotency-key'] !== undefined)
    expect(new Set(answered.map((r) => r.headers['idempotency-key'])).size).toBe(JOBS)
    await second.stop()
    await api.close()
    await hooks.close()
  }, 120_000)
})
