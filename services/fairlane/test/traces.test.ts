import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseTraceParent } from '@fairlane/protocol'
import {
  startNats,
  startOtlpReceiver,
  startRedis,
  startUpstream,
  type LoopbackUpstream,
  type NatsServer,
  type OtlpReceiver,
  type ReceivedSpan,
  type RedisServer,
} from '@fairlane/testing'
import { killAllNodeProcesses, startNodeProcess, type NodeProcess } from './cluster-harness.ts'

const EXAMPLE = fileURLToPath(new URL('../../../examples/cluster.yaml', import.meta.url))
const KEY = 'Bearer fl_demo_cluster'
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CLIENT_SPAN = '00f067aa0ba902b7'

/** What Prometheus 2.42 sends with every scrape. */
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

const SERVER = 2
const CLIENT = 3
const PRODUCER = 4
const CONSUMER = 5

let upstream: LoopbackUpstream
let receiver: OtlpReceiver
const nodes: NodeProcess[] = []

beforeAll(async () => {
  ;[upstream, receiver] = await Promise.all([startUpstream(), startOtlpReceiver()])
})

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()))
  await killAllNodeProcesses()
})

afterAll(async () => {
  await Promise.all([upstream?.close(), receiver?.close()])
})

/** What a node needs to send its spans to the receiver, quickly. */
function tracesEnv(): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_SERVICE_NAME: 'fairlane-test',
  }
}

async function start(
  nodeId: string,
  env: Record<string, string>,
  configPath = EXAMPLE,
): Promise<NodeProcess> {
  const node = await startNodeProcess({
    configPath,
    nodeId,
    env: { ECHO_URL: upstream.url, ...env },
  })
  nodes.push(node)
  return node
}

/** A config of one target `echo` (the example's key), with `target`'s settings. */
async function configWith(target: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-traces-'))
  const configPath = join(dir, 'fairlane.yaml')
  await writeFile(
    configPath,
    stringify({
      server: { host: '127.0.0.1', adminHost: '127.0.0.1' },
      targets: { echo: { allowPrivateAddresses: true, ...target } },
      workspaces: {
        demo: {
          targets: ['echo'],
          keys: [
            {
              id: 'demo-cluster',
              hash: 'sha256:1595abaf6585eabca092853e443d9707c071e9b6e91bd958a096700aeb36b809',
            },
          ],
        },
      },
    }),
  )
  return configPath
}

async function call(node: NodeProcess, traceparent?: string): Promise<Response> {
  const response = await fetch(`${node.proxyUrl}/t/echo/hello`, {
    headers: { authorization: KEY, ...(traceparent ? { traceparent } : {}) },
  })
  await response.arrayBuffer()
  return response
}

/** The one span of the trace with this name and kind, failing with what there is if not one. */
function one(spans: readonly ReceivedSpan[], name: string, kind: number): ReceivedSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind)
  if (found.length !== 1) {
    const seen = spans.map((s) => `${s.name}/${s.kind} ${s.spanId}<-${s.parentSpanId}`)
    throw new Error(`expected one ${name}/${kind}, got ${found.length}:\n${seen.join('\n')}`)
  }
  return found[0] as ReceivedSpan
}

function traceOf(traceId: string): readonly ReceivedSpan[] {
  return receiver.spans.filter((s) => s.traceId === traceId)
}

/** The traceparent the upstream received with the last request. */
function upstreamTraceParent(): ReturnType<typeof parseTraceParent> {
  return parseTraceParent(upstream.requests.at(-1)?.headers.traceparent)
}

describe('traces, embedded', () => {
  it('are off without an exporter: no span, and the client trace still goes upstream', async () => {
    // A service name and a protocol, but no endpoint and no exporter: nothing to send to.
    const node = await start('solo', {
      OTEL_SERVICE_NAME: 'fairlane-test',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    })
    await expect.poll(() => node.output()).toContain('"traces":"off"')
    const before = receiver.spans.length
    upstream.clear()
    const response = await call(node, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`)
    expect(response.status).toBe(200)
    const sent = upstreamTraceParent()
    expect(sent?.traceId).toBe(CLIENT_TRACE)
    expect(sent?.spanId).not.toBe(CLIENT_SPAN)
    await node.stop()
    expect(receiver.spans.length).toBe(before)
  })

  it('continue the client trace: server span, queue wait and the upstream call under it', async () => {
    const node = await start('solo', tracesEnv())
    await expect.poll(() => node.output()).toContain('"traces":"on"')
    upstream.clear()
    const response = await call(node, `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`)
    expect(response.status).toBe(200)
    const spans = await receiver.waitFor(() => traceOf(CLIENT_TRACE).length >= 3)
    const trace = spans.filter((s) => s.traceId === CLIENT_TRACE)
    const server = one(trace, 'GET', SERVER)
    expect(server.parentSpanId).toBe(CLIENT_SPAN)
    expect(server.attributes['http.request.method']).toBe('GET')
    expect(server.attributes['url.path']).toBe('/t/echo/hello')
    expect(server.attributes['http.response.status_code']).toBe(200)
    expect(server.attributes['fairlane.target']).toBe('echo')
    expect(server.resource['service.name']).toBe('fairlane-test')
    expect(server.resource['fairlane.node']).toBe('solo')
    const queue = one(trace, 'fairlane.queue_wait', 1)
    expect(queue.parentSpanId).toBe(server.spanId)
    expect(queue.attributes['fairlane.admission']).toBe('admitted')
    const client = one(trace, 'GET', CLIENT)
    expect(client.parentSpanId).toBe(server.spanId)
    expect(client.attributes['fairlane.attempt']).toBe(1)
    expect(client.attributes['fairlane.attempt.reason']).toBe('first')
    expect(client.attributes['http.response.status_code']).toBe(200)
    // The upstream continues the trace under the attempt that reached it.
    const sent = upstreamTraceParent()
    expect(sent).toEqual({ traceId: CLIENT_TRACE, spanId: client.spanId, flags: '01' })
    // The request's log line names its trace and span.
    const requestLine = () =>
      node
        .output()
        .split('\n')
        .find((l) => l.includes('"msg":"request"') && l.includes(CLIENT_TRACE))
    await expect.poll(requestLine).toBeDefined()
    const line = requestLine()
    expect(line).toContain(`"spanId":"${server.spanId}"`)
    expect(line).toContain('"node":"solo"')
  })
  it('put a sampled request’s spans on its histograms as exemplars, for OpenMetrics scrapes', async () => {
    const node = await start('solo', tracesEnv())
    const trace = 'aaaabbbbccccddddeeeeffff00003333'
    expect((await call(node, `00-${trace}-${CLIENT_SPAN}-01`)).status).toBe(200)
    // Sampled out by the client (and so by the parent-based sampler): no exemplar names it.
    const unsampled = 'aaaabbbbccccddddeeeeffff00004444'
    expect((await call(node, `00-${unsampled}-${CLIENT_SPAN}-00`)).status).toBe(200)
    const spans = await receiver.waitFor(() => traceOf(trace).length >= 3)
    const mine = spans.filter((s) => s.traceId === trace)
    const exemplarOf = (histogram: string, span: ReceivedSpan) =>
      new RegExp(
        `^${histogram}_bucket\\{[^}]*target="echo"[^}]*\\} \\d+ # \\{trace_id="${trace}",span_id="${span.spanId}"\\} \\S+ \\d+(\\.\\d+)?$`,
        'm',
      )
    const scrape = (accept?: string) =>
      fetch(`${node.adminUrl}/metrics`, accept ? { headers: { accept } } : {})
    await expect
      .poll(async () => (await scrape(PROMETHEUS_ACCEPT)).text())
      .toMatch(exemplarOf('fairlane_request_duration_seconds', one(mine, 'GET', SERVER)))
    const openMetrics = await scrape(PROMETHEUS_ACCEPT)
    expect(openMetrics.headers.get('content-type')).toMatch(/^application\/openmetrics-text;/)
    const text = await openMetrics.text()
    expect(text).toMatch(exemplarOf('fairlane_upstream_duration_seconds', one(mine, 'GET', CLIENT)))
    expect(text).toMatch(
      exemplarOf('fairlane_queue_wait_seconds', one(mine, 'fairlane.queue_wait', 1)),
    )
    expect(text).not.toContain(unsampled)
    expect(text).toContain('\n# EOF\n')
    // Any other scraper gets the text format, as before exemplars: counters named *_total.
    const plain = await scrape()
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const plainText = await plain.text()
    expect(plainText).toContain('# TYPE fairlane_requests_total counter')
    expect(plainText).toMatch(/^fairlane_request_duration_seconds_count\{target="echo"\} 2$/m)
    expect(plainText).not.toContain(trace)
    expect(plainText).not.toContain('# EOF')
  })

  it('make a client span per upstream attempt, each sending its own context', async () => {
    const configPath = await configWith({
      endpoints: [{ url: upstream.url, region: 'a' }],
      retry: { maxRetryMs: 2_000 },
    })
    const node = await start('solo', { ...tracesEnv(), FAIRLANE_REGION: 'a' }, configPath)
    upstream.clear()
    let calls = 0
    // The first attempt hears "come back now"; the retry goes through the lane again.
    upstream.behave(() =>
      ++calls === 1
        ? { kind: 'respond', status: 503, headers: { 'retry-after': '0' } }
        : { kind: 'echo' },
    )
    const trace = 'aaaabbbbccccddddeeeeffff00001111'
    try {
      const response = await call(node, `00-${trace}-${CLIENT_SPAN}-01`)
      expect(response.status).toBe(200)
    } finally {
      upstream.behave(() => ({ kind: 'echo' }))
    }
    const spans = await receiver.waitFor(() => traceOf(trace).length >= 5)
    const mine = spans.filter((s) => s.traceId === trace)
    const server = one(mine, 'GET', SERVER)
    expect(server.attributes['fairlane.attempts']).toBe(2)
    const waits = mine.filter((s) => s.name === 'fairlane.queue_wait')
    expect(waits.map((s) => s.parentSpanId)).toEqual([server.spanId, server.spanId])
    const attempts = mine
      .filter((s) => s.kind === CLIENT)
      .sort(
        (a, b) =>
          Number(a.attributes['fairlane.attempt']) - Number(b.attributes['fairlane.attempt']),
      )
    expect(attempts.map((s) => s.attributes['fairlane.attempt.reason'])).toEqual(['first', 'retry'])
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200])
    expect(attempts.map((s) => s.status)).toEqual([2, 0])
    expect(attempts[1]?.attributes['http.request.resend_count']).toBe(1)
    for (const attempt of attempts) {
      expect(attempt.parentSpanId).toBe(server.spanId)
      expect(attempt.attributes['fairlane.upstream.region']).toBe('a')
    }
    // Each upstream request carried the span of its own attempt.
    const sent = upstream.requests.map((r) => parseTraceParent(r.headers.traceparent)?.spanId)
    expect(sent).toEqual(attempts.map((s) => s.spanId))
  })
  it('name the second call of a race a hedge, to the other region', async () => {
    const other = await startUpstream()
    try {
      const configPath = await configWith({
        endpoints: [
          { url: upstream.url, region: 'a' },
          { url: other.url, region: 'b' },
        ],
        hedge: { enabled: true, delayMs: 50 },
      })
      const node = await start('solo', { ...tracesEnv(), FAIRLANE_REGION: 'a' }, configPath)
      upstream.behave(() => ({ kind: 'delay', ms: 1_500 }))
      const trace = 'aaaabbbbccccddddeeeeffff00002222'
      try {
        expect((await call(node, `00-${trace}-${CLIENT_SPAN}-01`)).status).toBe(200)
      } finally {
        upstream.behave(() => ({ kind: 'echo' }))
      }
      const spans = await receiver.waitFor(() => traceOf(trace).length >= 4)
      const attempts = spans
        .filter((s) => s.traceId === trace && s.kind === CLIENT)
        .map((s) => [
          s.attributes['fairlane.attempt'],
          s.attributes['fairlane.attempt.reason'],
          s.attributes['fairlane.upstream.region'],
        ])
        .sort()
      expect(attempts).toEqual([
        [1, 'first', 'a'],
        [2, 'hedge', 'b'],
      ])
    } finally {
      await other.close()
    }
  })

  it('make a span per job attempt and per webhook delivery try, in the submission’s trace', async () => {
    const hooks = await startUpstream()
    try {
      const dir = await mkdtemp(join(tmpdir(), 'fairlane-traces-jobs-'))
      const configPath = join(dir, 'fairlane.yaml')
      await writeFile(
        configPath,
        stringify({
          server: { host: '127.0.0.1', adminHost: '127.0.0.1' },
          jobs: {
            dataDir: dir,
            pollMs: 50,
            webhooks: { initialDelayMs: 100, maxDelayMs: 1_000, timeoutMs: 2_000 },
          },
          targets: {
            // One call per attempt: the 503 ends the attempt, and the job tries again.
            echo: {
              endpoints: [{ url: upstream.url, region: 'a' }],
              allowPrivateAddresses: true,
              retry: { attempts: 1 },
            },
            hooks: { endpoints: [{ url: hooks.url }], allowPrivateAddresses: true },
          },
          workspaces: {
            demo: {
              targets: ['echo', 'hooks'],
              keys: [
                {
                  id: 'demo-cluster',
                  hash: 'sha256:1595abaf6585eabca092853e443d9707c071e9b6e91bd958a096700aeb36b809',
                },
              ],
              webhookSecrets: [
                `whsec_${Buffer.from('a webhook secret of 32 bytes!!!!').toString('base64')}`,
              ],
            },
          },
        }),
      )
      const node = await start('solo', tracesEnv(), configPath)
      upstream.clear()
      // The first attempt hears 503 "again now", the second succeeds; the first delivery
      // hears 500, the second takes it.
      let calls = 0
      upstream.behave(() =>
        ++calls === 1
          ? { kind: 'respond', status: 503, headers: { 'retry-after': '0' } }
          : { kind: 'echo' },
      )
      let deliveries = 0
      hooks.behave(() => (++deliveries === 1 ? { kind: 'respond', status: 500 } : { kind: 'echo' }))
      const trace = 'aaaabbbbccccddddeeeeffff00005555'
      const submitted = await fetch(`${node.proxyUrl}/v1/jobs`, {
        method: 'POST',
        headers: {
          authorization: KEY,
          'content-type': 'application/json',
          traceparent: `00-${trace}-${CLIENT_SPAN}-01`,
        },
        body: JSON.stringify({
          request: { method: 'GET', target: 'echo', path: '/job?secret=1' },
          webhook: { target: 'hooks', path: '/hook' },
        }),
      })
      expect(submitted.status).toBe(202)
      const { id } = (await submitted.json()) as { id: string }
      // Server; two attempts, each with its queue wait and upstream call; two deliveries.
      const spans = await receiver.waitFor(() => traceOf(trace).length >= 9)
      const mine = spans.filter((s) => s.traceId === trace)
      const server = one(mine, 'POST', SERVER)
      expect(server.parentSpanId).toBe(CLIENT_SPAN)
      expect(server.attributes['url.path']).toBe('/v1/jobs')

      const attempts = mine
        .filter((s) => s.name === 'fairlane.job_attempt')
        .sort(
          (a, b) =>
            Number(a.attributes['fairlane.job.attempt']) -
            Number(b.attributes['fairlane.job.attempt']),
        )
      expect(
        attempts.map((s) => [s.kind, s.parentSpanId, s.attributes['fairlane.job.attempt']]),
      ).toEqual([
        [CONSUMER, server.spanId, 1],
        [CONSUMER, server.spanId, 2],
      ])
      expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 200])
      expect(attempts.map((s) => s.status)).toEqual([2, 0])
      for (const attempt of attempts) {
        expect(attempt.attributes['fairlane.job.id']).toBe(id)
        expect(attempt.attributes['fairlane.workspace']).toBe('demo')
        expect(attempt.attributes['fairlane.target']).toBe('echo')
        // Its stages hang under it as a request's hang under its server span.
        const under = mine.filter((s) => s.parentSpanId === attempt.spanId)
        expect(under.map((s) => `${s.name}/${s.kind}`).sort()).toEqual([
          `GET/${CLIENT}`,
          'fairlane.queue_wait/1',
        ])
      }
      // Each upstream call carried the span of its own attempt's call.
      const calledUnder = upstream.requests.map((r) => parseTraceParent(r.headers.traceparent))
      const callSpans = attempts.map(
        (a) =>
          one(
            mine.filter((s) => s.parentSpanId === a.spanId),
            'GET',
            CLIENT,
          ).spanId,
      )
      expect(calledUnder.map((t) => t?.spanId)).toEqual(callSpans)
      expect(calledUnder.map((t) => t?.traceId)).toEqual([trace, trace])

      const posts = mine
        .filter((s) => s.name === 'POST' && s.kind === CLIENT)
        .sort(
          (a, b) =>
            Number(a.attributes['fairlane.webhook.attempt']) -
            Number(b.attributes['fairlane.webhook.attempt']),
        )
      expect(posts.map((s) => s.parentSpanId)).toEqual([server.spanId, server.spanId])
      expect(posts.map((s) => s.attributes['fairlane.webhook.attempt'])).toEqual([1, 2])
      expect(posts.map((s) => s.attributes['http.response.status_code'])).toEqual([500, 200])
      expect(posts.map((s) => s.status)).toEqual([2, 0])
      expect(posts[1]?.attributes['http.request.resend_count']).toBe(1)
      for (const post of posts) {
        expect(post.attributes['fairlane.job.id']).toBe(id)
        expect(post.attributes['fairlane.webhook.index']).toBe(0)
        expect(post.attributes['http.request.method']).toBe('POST')
        expect(post.attributes['url.full']).toBe(`${hooks.url}/hook`)
      }
      // The receiver continues the trace under each delivery's span.
      expect(hooks.requests.map((r) => parseTraceParent(r.headers.traceparent)?.spanId)).toEqual(
        posts.map((s) => s.spanId),
      )
    } finally {
      upstream.behave(() => ({ kind: 'echo' }))
      await hooks.close()
    }
  })

  it('stop in time when the collector takes the spans and never answers', async () => {
    const held = new Set<Socket>()
    const collector = createServer((socket) => {
      held.add(socket)
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = collector.address() as AddressInfo
      const node = await start('solo', {
        ...tracesEnv(),
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_EXPORTER_OTLP_TIMEOUT: '60000',
      })
      expect((await call(node)).status).toBe(200)
      // SIGTERM; the harness kills a node still running 15 s later.
      await node.stop()
      expect(node.ended()).toEqual({ code: 0, signal: null })
    } finally {
      for (const socket of held) socket.destroy()
      collector.close()
    }
  })
})

describe('traces, cluster', () => {
  let nats: NatsServer
  let redis: RedisServer

  beforeAll(async () => {
    ;[nats, redis] = await Promise.all([startNats(), startRedis()])
  })

  afterAll(async () => {
    await Promise.all([nats?.stop(), redis?.stop()])
  })

  it('follow a request from an ingress node over NATS to the lane owner and upstream', async () => {
    const cluster = { FAIRLANE_NATS_URL: nats.url, FAIRLANE_REDIS_URL: redis.url }
    // node-1 owns every lane; node-2 only takes requests, so its tickets cross NATS.
    const owner = await start('node-1', { ...cluster, ...tracesEnv(), FAIRLANE_REGION: 'a' })
    const ingress = await start('node-2', {
      ...cluster,
      ...tracesEnv(),
      FAIRLANE_REGION: 'b',
      FAIRLANE_ROLES: 'ingress',
    })
    upstream.clear()
    // No traceparent from the client: node-2 starts the trace.
    const response = await call(ingress)
    expect(response.status).toBe(200)
    const sent = upstreamTraceParent()
    if (!sent) throw new Error('the upstream received no traceparent')
    // Server, queue wait, producer and client from node-2; consumer and admission from node-1.
    const spans = await receiver.waitFor(() => traceOf(sent.traceId).length >= 6)
    const trace = spans.filter((s) => s.traceId === sent.traceId)
    const server = one(trace, 'GET', SERVER)
    expect(server.parentSpanId).toBe('')
    expect(server.resource['fairlane.node']).toBe('node-2')
    const queue = one(trace, 'fairlane.queue_wait', 1)
    expect(queue.parentSpanId).toBe(server.spanId)
    const producer = trace.find((s) => s.kind === PRODUCER)
    expect(producer?.name).toMatch(/^send fairlane\.v4\.shard\.\d+$/)
    expect(producer?.parentSpanId).toBe(queue.spanId)
    expect(producer?.resource['fairlane.node']).toBe('node-2')
    expect(producer?.attributes['messaging.system']).toBe('nats')
    const consumer = trace.find((s) => s.kind === CONSUMER)
    expect(consumer?.name).toBe(producer?.name.replace('send', 'process'))
    expect(consumer?.parentSpanId).toBe(producer?.spanId)
    expect(consumer?.resource['fairlane.node']).toBe('node-1')
    expect(consumer?.resource['cloud.region']).toBe('a')
    const admission = one(trace, 'fairlane.admission', 1)
    expect(admission.parentSpanId).toBe(consumer?.spanId)
    expect(admission.resource['fairlane.node']).toBe('node-1')
    expect(admission.attributes['fairlane.admission']).toBe('admitted')
    const client = one(trace, 'GET', CLIENT)
    expect(client.parentSpanId).toBe(server.spanId)
    expect(client.resource['fairlane.node']).toBe('node-2')
    // The upstream saw the same trace, under the attempt's span.
    expect(sent.spanId).toBe(client.spanId)
    // The ingress node's request line names the trace it started.
    await expect
      .poll(() =>
        ingress
          .output()
          .split('\n')
          .find((l) => l.includes('"msg":"request"') && l.includes(sent.traceId)),
      )
      .toContain('"node":"node-2"')
    expect(owner.ended()).toBeNull()
  })
})
