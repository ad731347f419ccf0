/**
 * `npm run demo -- jobs`: an upstream that answers 429 twice, a webhook receiver that fails
 * once, and Fairlane (the real CLI, examples/jobs.yaml) with its job store in a temporary
 * directory. Submits a job, follows it to the end, and checks the webhook's signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startUpstream, type RecordedRequest } from '@fairlane/testing'
import { bold, dim, startFairlane } from './fairlane-process.ts'

const KEY = 'fl_demo_jobs'
const SECRET = 'whsec_ZmFpcmxhbmUgZGVtbyB3ZWJob29rIHNlY3JldA=='

/** Standard Webhooks verification, as a receiver would write it (docs/jobs.md). */
function verified(hook: RecordedRequest): boolean {
  const id = String(hook.headers['webhook-id'])
  const ts = String(hook.headers['webhook-timestamp'])
  const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64')
  const expected = Buffer.from(
    'v1,' +
      createHmac('sha256', key).update(`${id}.${ts}.${hook.body.toString()}`).digest('base64'),
  )
  return String(hook.headers['webhook-signature'])
    .split(' ')
    .some(
      (given) => given.length === expected.length && timingSafeEqual(Buffer.from(given), expected),
    )
}

export async function jobsDemo(): Promise<void> {
  const api = await startUpstream()
  let calls = 0
  api.behave(() =>
    ++calls <= 2
      ? { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: 'slow down' }
      : { kind: 'echo' },
  )
  const hooks = await startUpstream()
  let deliveries = 0
  hooks.behave(() =>
    ++deliveries === 1 ? { kind: 'respond', status: 503 } : { kind: 'respond', status: 204 },
  )
  const dataDir = await mkdtemp(join(tmpdir(), 'fairlane-demo-jobs-'))
  const fairlane = await startFairlane('jobs.yaml', {
    ECHO_URL: api.url,
    HOOKS_URL: hooks.url,
    FAIRLANE_DATA_DIR: dataDir,
  })
  const auth = { authorization: `Bearer ${KEY}` }
  try {
    console.log(bold(`Fairlane (embedded) on ${fairlane.proxyUrl}; job store in ${dataDir}`))
    console.log(
      dim('upstream answers 429 (Retry-After: 1) twice; the webhook receiver fails once\n'),
    )
    const job = {
      request: { method: 'POST', target: 'echo', path: '/orders', body: { item: 'book' } },
      webhook: { target: 'hooks', path: '/fairlane' },
    }
    console.log(bold('POST /v1/jobs'), dim(JSON.stringify(job)))
    const accepted = await fetch(`${fairlane.proxyUrl}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': 'demo-order-1' },
      body: JSON.stringify(job),
    })
    const { id } = (await accepted.json()) as { id: string }
    console.log(
      `${bold(String(accepted.status))} id ${id}, Location ${accepted.headers.get('location')}\n`,
    )

    let last = ''
    for (;;) {
      const doc = (await (
        await fetch(`${fairlane.proxyUrl}/v1/jobs/${id}`, { headers: auth })
      ).json()) as {
        state: string
        attempts: { status?: number; retryAt?: string }[]
        webhooks: { state: string; attempts: number }[]
        response?: { status: number }
      }
      const line = `state ${doc.state}, attempts ${doc.attempts.map((a) => a.status ?? '-').join(', ') || '-'}, webhook ${doc.webhooks[0]?.state} (${doc.webhooks[0]?.attempts} tries)`
      if (line !== last) console.log(`  ${line}`)
      last = line
      if (doc.webhooks[0]?.state === 'delivered' || doc.webhooks[0]?.state === 'dead') break
      await sleep(100)
    }
    const hook = hooks.requests.at(-1)
    if (hook) {
      console.log(bold('\nThe webhook the receiver took:'))
      for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'])
        console.log(dim(`    ${name}: ${String(hook.headers[name])}`))
      console.log(
        `    signature valid with the workspace's secret: ${verified(hook) ? 'yes' : 'NO'}`,
      )
      console.log(
        `    same webhook-id on every try: ${new Set(hooks.requests.map((r) => r.headers['webhook-id'])).size === 1 ? 'yes' : 'no'}`,
      )
    }
    console.log(
      `\nThe upstream saw Idempotency-Key ${String(api.requests[0]?.headers['idempotency-key'])} on all ${api.hits} calls.`,
    )
  } finally {
    await fairlane.stop()
    await api.close()
    await hooks.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}
