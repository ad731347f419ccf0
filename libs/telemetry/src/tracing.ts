import { trace, type Tracer } from '@opentelemetry/api'

/** Traces of a running node: the tracer its spans come from, and the stop that flushes them. */
export interface Tracing {
  readonly tracer: Tracer
  /** Exports the spans still buffered, then stops exporting. */
  shutdown(): Promise<void>
}

/** Who the spans are from: resource attributes beside what OTEL_RESOURCE_ATTRIBUTES says. */
export interface TracingIdentity {
  readonly node: string
  readonly region: string | undefined
}

type Env = Readonly<Record<string, string | undefined>>

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0)
}

/**
 * Whether the OTEL_* variables ask for traces: an exporter named in OTEL_TRACES_EXPORTER
 * (other than `none`), or an OTLP endpoint. Unlike the SDK's own default (OTLP to
 * localhost:4318 whenever it is started), no endpoint and no exporter means no tracing at all:
 * a node nobody collects traces from makes no span.
 */
export function tracesRequested(env: Env): boolean {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return false
  const exporters = list(env['OTEL_TRACES_EXPORTER'])
  if (exporters.length > 0) return !exporters.every((name) => name === 'none')
  return Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'])
}

/**
 * Starts @opentelemetry/sdk-node as the OTEL_* variables of the process configure it
 * (exporter, endpoint, protocol, sampler, propagators, service name, resource attributes,
 * batch sizes), for traces only: metrics stay with prom-client, logs with pino. Resolves
 * undefined when no traces are requested; the SDK is then not even loaded, and the callers
 * hold no tracer, so the request path makes no span and propagates no context.
 */
export async function startTracing(
  env: Env,
  identity: TracingIdentity,
): Promise<Tracing | undefined> {
  if (!tracesRequested(env)) return undefined
  const [{ NodeSDK }, { defaultResource, resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
  ])
  const sdk = new NodeSDK({
    // The lowest layer: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win.
    resource: defaultResource().merge(
      resourceFromAttributes({
        'service.name': 'fairlane',
        'fairlane.node': identity.node,
        ...(identity.region ? { 'cloud.region': identity.region } : {}),
      }),
    ),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  })
  sdk.start()
  return { tracer: trace.getTracer('fairlane'), shutdown: () => sdk.shutdown() }
}
