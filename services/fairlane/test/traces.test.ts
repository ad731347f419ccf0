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
    expect(node.output()).toContain('"traces":"off"')
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
    expect(node.output()).toContain('"traces":"on"')
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
    const line = node
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"request"') && l.includes(CLIENT_TRACE))
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
    expect(producer?.name).toMatch(/^send fairlane\.v3\.shard\.\d+$/)
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
    expect(owner.output()).toContain('"node":"node-1"')
  })
})
