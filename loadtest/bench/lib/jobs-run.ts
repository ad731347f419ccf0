/**
 * Jobs end to end (issue 15), for `npm run bench:jobs` and the `jobs` scenario of
 * `npm run bench`: Fairlane embedded (the real CLI) with its job store in a temporary
 * directory, a loopback upstream that answers at once and a loopback webhook receiver that
 * acknowledges with 204. `connections` submitters POST jobs for `durationSec` seconds; then
 * every accepted job's webhook is awaited. Measures jobs accepted per second, jobs delivered
 * per second end to end, the delay from the upstream's answer to the webhook's arrival
 * (p50/p99, matched by job id: the upstream sees it as Idempotency-Key, the receiver as
 * webhook-id) and Fairlane's CPU per job.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { startUpstream } from '@fairlane/testing'
import { benchConfigDir, launchFairlane } from '../systems/fairlane-embedded.ts'
import { watchCpu } from './cpu.ts'

/** How long the bench waits for the last webhooks after the last submission. */
const DRAIN_MS = 120_000

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

async function jobsConfig(upstream: string, receiver: string, key: string): Promise<string> {
  const document = {
    logging: { level: 'warn' },
    targets: {
      echo: { endpoints: [{ url: upstream }], allowPrivateAddresses: true },
      hooks: { endpoints: [{ url: receiver }], allowPrivateAddresses: true },
    },
    workspaces: {
      bench: {
        targets: ['echo', 'hooks'],
        webhookSecrets: [`whsec_${randomBytes(24).toString('base64')}`],
        keys: [{ id: 'jobs', hash: `sha256:${createHash('sha256').update(key).digest('hex')}` }],
      },
    },
  }
  const path = join(await benchConfigDir(), 'jobs.json')
  await writeFile(path, JSON.stringify(document, null, 2))
  return path
}

/** Submits jobs from `connections` loops until `untilMs`; resolves with the ids accepted. */
async function submit(proxyUrl: string, key: string, connections: number, untilMs: number) {
  const accepted: string[] = []
  let refused = 0
  const body = JSON.stringify({
    request: { method: 'POST', target: 'echo', path: '/orders', body: { item: 'book' } },
    webhook: { target: 'hooks', path: '/fairlane' },
  })
  const loop = async () => {
    while (performance.now() < untilMs) {
      const res = await fetch(`${proxyUrl}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      })
      const answer = (await res.json()) as { id?: string }
      if (res.status === 202 && answer.id) accepted.push(answer.id)
      else refused++
    }
  }
  await Promise.all(Array.from({ length: connections }, loop))
  return { accepted, refused }
}

/** When each job id first reached a server, by the header that names it there. */
function arrivals(header: string): {
  readonly at: Map<string, number>
  readonly record: (request: { headers: Record<string, unknown>; receivedAt: number }) => void
} {
  const at = new Map<string, number>()
  return {
    at,
    record: (request) => {
      const id = request.headers[header]
      if (typeof id === 'string' && !at.has(id)) at.set(id, request.receivedAt)
    },
  }
}

/** Upstream answer → webhook arrival, per job, in ms. */
function deliveryDelays(answered: Map<string, number>, hooked: Map<string, number>): number[] {
  const delays: number[] = []
  for (const [id, at] of hooked) {
    const from = answered.get(id)
    if (from !== undefined) delays.push(at - from)
  }
  return delays.sort((a, b) => a - b)
}

export interface JobsFigures {
  readonly accepted: number
  readonly refused: number
  readonly delivered: number
  readonly acceptedPerSec: number
  readonly deliveredPerSec: number
  readonly delayP50Ms: number
  readonly delayP99Ms: number
  readonly cpuMicrosPerJob: number
}

export const JOBS_COLUMNS = [
  'accepted',
  'refused',
  'delivered',
  'accepted/s',
  'delivered/s',
  'answer → webhook p50 ms',
  'p99 ms',
  'CPU µs/job',
]

export function jobsRow(figures: JobsFigures): string[] {
  return [
    String(figures.accepted),
    String(figures.refused),
    String(figures.delivered),
    figures.acceptedPerSec.toFixed(0),
    figures.deliveredPerSec.toFixed(0),
    figures.delayP50Ms.toFixed(1),
    figures.delayP99Ms.toFixed(1),
    figures.cpuMicrosPerJob.toFixed(0),
  ]
}

export async function measureJobs(options: {
  readonly connections: number
  readonly durationSec: number
  readonly say: (line?: string) => void
}): Promise<JobsFigures> {
  const key = 'fl_bench_' + randomBytes(24).toString('base64url')
  // Recorded here rather than from the servers' own lists, which keep the last 10,000.
  const answered = arrivals('idempotency-key')
  const hooked = arrivals('webhook-id')
  const upstream = await startUpstream({ record: false })
  upstream.behave((request) => {
    answered.record(request)
    return { kind: 'echo' }
  })
  const receiver = await startUpstream({ record: false })
  receiver.behave((request) => {
    hooked.record(request)
    return { kind: 'respond', status: 204 }
  })
  const dataDir = await mkdtemp(join(tmpdir(), 'fairlane-bench-jobs-'))
  const fairlane = await launchFairlane(await jobsConfig(upstream.url, receiver.url, key), {
    env: { FAIRLANE_DATA_DIR: dataDir },
  })
  try {
    options.say(
      `jobs: ${options.connections} submitters for ${options.durationSec} s, then every ` +
        `accepted job's webhook awaited (at most ${DRAIN_MS / 1000} s)`,
    )
    const cpu = watchCpu({ fairlane: fairlane.child.pid })
    const started = performance.now()
    const { accepted, refused } = await submit(
      fairlane.proxyUrl,
      key,
      options.connections,
      started + options.durationSec * 1000,
    )
    const submittedMs = performance.now() - started
    const delivered = () => accepted.filter((id) => hooked.at.has(id)).length
    const deadline = performance.now() + DRAIN_MS
    while (hooked.at.size < accepted.length && performance.now() < deadline) await sleep(50)
    const elapsedMs = performance.now() - started
    const cpuPercent = cpu()['fairlane'] ?? Number.NaN
    const done = delivered()
    const delays = deliveryDelays(answered.at, hooked.at)
    return {
      accepted: accepted.length,
      refused,
      delivered: done,
      acceptedPerSec: accepted.length / (submittedMs / 1000),
      deliveredPerSec: done / (elapsedMs / 1000),
      delayP50Ms: percentile(delays, 50),
      delayP99Ms: percentile(delays, 99),
      cpuMicrosPerJob: ((cpuPercent / 100) * elapsedMs * 1000) / Math.max(1, done),
    }
  } finally {
    await fairlane.stop()
    await Promise.all([upstream.close(), receiver.close()])
    await rm(dataDir, { recursive: true, force: true })
  }
}
