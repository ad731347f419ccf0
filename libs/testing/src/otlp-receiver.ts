import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** A span as received, its attributes flattened to plain values. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  /** Empty for a root span. */
  readonly parentSpanId: string
  readonly name: string
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, string | number | boolean>>
  /** The resource of the process that sent it (service.name, fairlane.node, ...). */
  readonly resource: Readonly<Record<string, string | number | boolean>>
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  readonly status: number
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces). */
  readonly url: string
  /** Every span received so far, in arrival order. */
  readonly spans: readonly ReceivedSpan[]
  /** Waits until `done` holds for the spans received (polling), or throws after `timeoutMs`. */
  waitFor(
    done: (spans: readonly ReceivedSpan[]) => boolean,
    timeoutMs?: number,
  ): Promise<readonly ReceivedSpan[]>
  close(): Promise<void>
}

interface AnyValue {
  stringValue?: string
  boolValue?: boolean
  intValue?: number | string
  doubleValue?: number
}

interface KeyValue {
  key: string
  value?: AnyValue
}

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind?: number
  attributes?: KeyValue[]
  status?: { code?: number }
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] }
    scopeSpans?: { spans?: OtlpSpan[] }[]
  }[]
}

function flatten(
  attributes: readonly KeyValue[] | undefined,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {}
  for (const { key, value } of attributes ?? []) {
    if (!value) continue
    if (value.stringValue !== undefined) out[key] = value.stringValue
    else if (value.boolValue !== undefined) out[key] = value.boolValue
    // OTLP/JSON may send a 64-bit integer as a string.
    else if (value.intValue !== undefined) out[key] = Number(value.intValue)
    else if (value.doubleValue !== undefined) out[key] = value.doubleValue
  }
  return out
}

/**
 * An OTLP/HTTP trace receiver on loopback, for tests: what a collector would receive from the
 * nodes under test. It speaks the JSON encoding (OTEL_EXPORTER_OTLP_PROTOCOL=http/json, a
 * standard setting of every OTel SDK) and answers anything else 415, so a test that forgot
 * the protocol fails loudly instead of seeing no span.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      if (!req.headers['content-type']?.startsWith('application/json')) {
        res.writeHead(415, { 'content-type': 'text/plain' }).end('this receiver reads OTLP/JSON')
        return
      }
      let body: ExportRequest
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest
      } catch {
        res.writeHead(400).end()
        return
      }
      for (const resourceSpans of body.resourceSpans ?? []) {
        const resource = flatten(resourceSpans.resource?.attributes)
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind ?? 0,
              attributes: flatten(span.attributes),
              resource,
              status: span.status?.code ?? 0,
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    async waitFor(done, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      while (!done(spans)) {
        if (Date.now() > deadline) {
          const seen = spans.map((s) => `${s.name} ${s.traceId}/${s.spanId}<-${s.parentSpanId}`)
          throw new Error(`spans not received in ${timeoutMs} ms; received:\n${seen.join('\n')}`)
        }
        await sleep(50)
      }
      return spans
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
