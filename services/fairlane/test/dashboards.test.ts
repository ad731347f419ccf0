import { spawn } from 'node:child_process'
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import {
  startNats,
  startOtlpReceiver,
  startPrometheus,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type OtlpReceiver,
  type PrometheusServer,
  type RedisServer,
} from '@fairlane/testing'
import {
  killAllNodeProcesses,
  offerLoad,
  startNodeProcess,
  type NodeProcess,
} from './cluster-harness.ts'
import { hashKeySecret } from './node-harness.ts'

const GRAFANA = fileURLToPath(new URL('../../../deploy/grafana/', import.meta.url))
const RULES = fileURLToPath(
  new URL('../../../deploy/prometheus/fairlane-rules.yaml', import.meta.url),
)
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

const FLOOD = 'fl_dash_flood_key'
const CALM = 'fl_dash_calm_key'
const EAGER = 'fl_dash_eager_key'
/** The one sampled request's trace: the nodes sample nothing else (parentbased_always_off). */
const TRACE = '0af7651916cd43dd8448eb211c80319c'

/**
 * Three workspaces in three tiers on one target split in two partitions (so the target's
 * limit is shared through the Redis ledger): acme floods its key's 10/s with a lane that
 * holds 5 (429 queue_full, tickets that wait at their owner), gamma's tier never waits
 * (429 rate_limited beyond its key's 5/s), beta stays under its limits (leased shares).
 */
const CONFIG = (upstream: string) => `
cluster: { shards: 32, leaseTtlMs: 6000 }
queue: { perLane: 5 }
tiers:
  paid: { priority: 1, minShare: 0.1, maxWaitMs: 30000 }
  free: { priority: 2, minShare: 0.05, maxWaitMs: 10000 }
  now: { priority: 2, minShare: 0.05, maxWaitMs: 0 }
targets:
  echo:
    endpoints: [{ url: "${upstream}", region: a }]
    allowPrivateAddresses: true
    partitions: 2
    limits: { rate: { rps: 500, burst: 50 } }
workspaces:
  acme:
    tier: paid
    targets: [echo]
    keys: [{ id: flood, hash: "${hashKeySecret(FLOOD)}", limits: { rate: { rps: 10, burst: 2 } } }]
  beta:
    tier: free
    targets: [echo]
    keys: [{ id: calm, hash: "${hashKeySecret(CALM)}" }]
  gamma:
    tier: now
    targets: [echo]
    keys: [{ id: eager, hash: "${hashKeySecret(EAGER)}", limits: { rate: { rps: 5, burst: 1 } } }]
`

interface Panel {
  readonly title: string
  readonly targets?: readonly { readonly expr: string }[]
  readonly panels?: readonly Panel[]
}

/** Every query of every panel (rows' panels included) of every dashboard in deploy/grafana. */
async function dashboardQueries(): Promise<{ where: string; expr: string }[]> {
  const queries: { where: string; expr: string }[] = []
  for (const file of (await readdir(GRAFANA)).filter((f) => f.endsWith('.json')).sort()) {
    const dashboard = JSON.parse(await readFile(join(GRAFANA, file), 'utf8')) as {
      panels: Panel[]
    }
    const visit = (panel: Panel) => {
      for (const target of panel.targets ?? [])
        queries.push({ where: `${file}: ${panel.title}`, expr: target.expr })
      panel.panels?.forEach(visit)
    }
    dashboard.panels.forEach(visit)
  }
  return queries
}

/** Grafana's variables as Grafana would expand them with "All" selected and 1 s scrapes. */
function expand(expr: string): string {
  return expr.replaceAll('$__rate_interval', '15s').replaceAll('$workspace', '.*')
}

/** Runs `fairlane top --once` against the given admin URLs. */
function topOnce(admin: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=development', MAIN, 'top', '--once', '--admin', admin],
      { env: process.env },
    )
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout }))
  })
}

let nats: NatsServer
let redis: RedisServer
let upstream: LoopbackUpstream
let receiver: OtlpReceiver
let prometheus: PrometheusServer | undefined
let nodes: NodeProcess[] = []

beforeAll(async () => {
  ;[nats, redis, upstream, receiver] = await Promise.all([
    startNats(),
    startRedis(),
    startUpstream(),
    startOtlpReceiver(),
  ])
})

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()))
  await killAllNodeProcesses()
  await prometheus?.stop()
  await Promise.all([nats?.stop(), redis?.stop(), upstream?.close(), receiver?.close()])
})

describe('Grafana dashboards against a real Prometheus', () => {
  it('every panel query and alert expression evaluates, and every panel query has data, on a three-node cluster under load', async () => {
    const queries = await dashboardQueries()
    expect(queries.length).toBeGreaterThan(30)
    const dir = await mkdtemp(join(tmpdir(), 'fairlane-dash-'))
    const configPath = join(dir, 'fairlane.yaml')
    await writeFile(configPath, CONFIG(upstream.url))
    nodes = await Promise.all(
      [1, 2, 3].map((i) =>
        startNodeProcess({
          configPath,
          nodeId: `node-${i}`,
          env: {
            FAIRLANE_NATS_URL: nats.url,
            FAIRLANE_REDIS_URL: redis.url,
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
            OTEL_TRACES_SAMPLER: 'parentbased_always_off',
          },
        }),
      ),
    )
    prometheus = await startPrometheus({
      targets: nodes.map((n) => new URL(n.adminUrl).host),
      scrapeIntervalSeconds: 1,
      features: ['exemplar-storage'],
    })
    const server = prometheus
    await expect.poll(() => server.healthyTargets(), { timeout: 20_000 }).toBe(3)

    const proxies = () => nodes.map((n) => n.proxyUrl)
    const load = Promise.all([
      offerLoad({
        targets: proxies,
        path: '/t/echo/flood',
        headers: { authorization: `Bearer ${FLOOD}` },
        ratePerSecond: 60,
        durationMs: 25_000,
      }),
      offerLoad({
        targets: proxies,
        path: '/t/echo/calm',
        headers: { authorization: `Bearer ${CALM}` },
        ratePerSecond: 30,
        durationMs: 25_000,
      }),
      offerLoad({
        targets: proxies,
        path: '/t/echo/eager',
        headers: { authorization: `Bearer ${EAGER}` },
        ratePerSecond: 20,
        durationMs: 25_000,
      }),
    ])
    // One request the client traced and sampled: its trace is the exemplar to find.
    const traced = await fetch(`${nodes[0]?.proxyUrl}/t/echo/traced`, {
      headers: { authorization: `Bearer ${CALM}`, traceparent: `00-${TRACE}-b7ad6b7169203331-01` },
    })
    await traced.arrayBuffer()
    expect(traced.status).toBe(200)
    // Enough scrapes into the load for every rate over 15 s.
    await sleep(15_000)

    const failures = new Map<string, string>()
    for (let round = 0; round < 5; round++) {
      failures.clear()
      for (const { where, expr } of queries) {
        const answer = await server.query(expand(expr))
        if (answer.status !== 'success') failures.set(where, `${expr}: ${answer.error}`)
        else if (!Array.isArray(answer.data?.result) || answer.data.result.length === 0)
          failures.set(where, `${expr}: empty result`)
      }
      if (failures.size === 0) break
      await sleep(1_000)
    }
    expect(Object.fromEntries(failures)).toEqual({})

    // The alert rules evaluate against the same series (most are rightly empty: no failure).
    const rules = parse(await readFile(RULES, 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[]
    }
    for (const rule of rules.groups.flatMap((g) => g.rules)) {
      const answer = await server.query(rule.expr)
      expect(answer.status, `${rule.alert}: ${answer.error ?? ''}`).toBe('success')
    }

    // Prometheus scraped OpenMetrics and kept the exemplar: a panel's latency links to the trace.
    await expect
      .poll(
        async () =>
          (await server.exemplars('fairlane_request_duration_seconds_bucket', 60)).flatMap((s) =>
            s.exemplars.map((e) => e.labels['trace_id']),
          ),
        { timeout: 10_000 },
      )
      .toContain(TRACE)

    // fairlane top sums the three nodes: both lanes, acme's refusals among them.
    const top = await topOnce(nodes.map((n) => n.adminUrl).join(','))
    expect(top.code).toBe(0)
    expect(top.stdout).toMatch(/ 3 nodes \(node-\d, node-\d, node-\d\)/)
    expect(top.stdout).toMatch(/^acme\s+flood\s+echo\s+paid\s+.*queue_full \d+/m)
    expect(top.stdout).toMatch(/^gamma\s+eager\s+echo\s+now\s+.*rate_limited \d+/m)
    expect(top.stdout).toMatch(/^beta\s+calm\s+echo\s+free\s/m)

    const results = await load
    expect(results[1].statuses.get(200)).toBeGreaterThan(0)
    expect(results[0].statuses.get(429)).toBeGreaterThan(0)
    expect(results[2].statuses.get(429)).toBeGreaterThan(0)
  }, 150_000)
})
