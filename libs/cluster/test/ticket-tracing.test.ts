import type { NatsConnection } from '@nats-io/transport-node'
import { SpanKind } from '@opentelemetry/api'
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace'
import { afterEach, describe, expect, it } from 'vitest'
import { NatsTransport, ShardServer } from '@fairlane/cluster'
import type { ScopeLimit } from '@fairlane/limits'
import { formatTraceParent, shardOf, type Ticket } from '@fairlane/protocol'
import { useNats } from './nats-fixture.ts'
import { testActor } from './test-actor.ts'

const SHARDS = 16
const roomy: ScopeLimit = { id: 'target:echo', kind: 'target', concurrency: 1000 }

const nats = useNats()
const closers: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})

const nc = (): Promise<NatsConnection> => nats.connect()

/** An SDK tracer whose finished spans the test reads back. */
function recordingTracer() {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })
  closers.push(() => provider.shutdown())
  return { tracer: provider.getTracer('test'), spans: () => exporter.getFinishedSpans() }
}

async function cluster(traced: boolean) {
  const recorded = recordingTracer()
  const tracer = traced ? { tracer: recorded.tracer } : {}
  const { actor } = testActor({ scopesOf: () => [roomy] })
  const server = new ShardServer({ nc: await nc(), actor, ...tracer })
  server.serve(shardOf('echo', 0, SHARDS))
  const transport = new NatsTransport({
    nc: await nc(),
    shardFor: (t) => shardOf(t.target, 0, SHARDS),
    requestTimeoutMs: 10_000,
    // Long enough that both tickets leave in one message.
    batch: { maxItems: 64, flushDelayMs: 50 },
    ...tracer,
  })
  closers.push(
    () => transport.close(),
    () => server.close(),
    () => actor.close(),
  )
  return { transport, ...recorded }
}

const ticket = (i: number, extra: Partial<Ticket> = {}): Ticket => ({
  requestId: `r${i}`,
  workspace: 'w',
  keyId: `k${i}`,
  target: 'echo',
  cost: 1,
  ...extra,
})

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

describe('a ticket crossing NATS', () => {
  it('keeps its own trace in a batch that carries the tickets of two traces', async () => {
    const { transport, tracer, spans } = await cluster(true)
    // Two requests of two traces, as the ingress's queue spans would send them.
    const requests = [tracer.startSpan('request a'), tracer.startSpan('request b')]
    const admissions = await Promise.all(
      requests.map((request, i) => {
        const context = request.spanContext()
        const traceparent = formatTraceParent({
          traceId: context.traceId,
          spanId: context.spanId,
          flags: '01',
        })
        return transport.submit(ticket(i, { trace: traceparent }))
      }),
    )
    for (const admission of admissions) {
      expect(admission.allowed).toBe(true)
      if (admission.allowed) admission.lease.release()
    }
    await expect.poll(() => spans().filter((s) => s.name === 'fairlane.admission').length).toBe(2)
    for (const request of requests) {
      const { traceId, spanId } = request.spanContext()
      const mine = spans().filter((s) => s.spanContext().traceId === traceId)
      const producer = mine.find((s) => s.kind === SpanKind.PRODUCER)
      const consumer = mine.find((s) => s.kind === SpanKind.CONSUMER)
      const admission = mine.find((s) => s.name === 'fairlane.admission')
      expect(producer?.name).toBe(`send fairlane.v4.shard.${shardOf('echo', 0, SHARDS)}`)
      expect(producer && parentOf(producer)).toBe(spanId)
      // One NATS message carried both tickets, each with its own context.
      expect(producer?.attributes['messaging.batch.message_count']).toBe(2)
      expect(consumer?.attributes['messaging.batch.message_count']).toBe(2)
      expect(consumer && parentOf(consumer)).toBe(producer?.spanContext().spanId)
      expect(admission && parentOf(admission)).toBe(consumer?.spanContext().spanId)
      expect(admission?.attributes['fairlane.admission']).toBe('admitted')
    }
  })

  it('makes no span for a ticket that carries no context', async () => {
    const { transport, spans } = await cluster(true)
    const admission = await transport.submit(ticket(1))
    expect(admission.allowed).toBe(true)
    if (admission.allowed) admission.lease.release()
    expect(spans()).toEqual([])
  })

  it('makes no span without a tracer, even for a ticket that carries a context', async () => {
    const { transport, spans } = await cluster(false)
    const admission = await transport.submit(
      ticket(2, { trace: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }),
    )
    expect(admission.allowed).toBe(true)
    if (admission.allowed) admission.lease.release()
    expect(spans()).toEqual([])
  })
})
