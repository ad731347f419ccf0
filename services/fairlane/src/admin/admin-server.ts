import Fastify, { LogController } from 'fastify'
import type { FairlaneMetrics, Logger } from '@fairlane/telemetry'

export interface AdminDeps {
  readonly metrics: FairlaneMetrics
  readonly logger: Logger
  /** False while starting and once draining: load balancers stop sending traffic. */
  readonly ready: () => boolean
}

/**
 * The operator's port: liveness, readiness and Prometheus metrics. Kept off the proxy port
 * so that it is never reachable through a public listener by accident.
 */
export function buildAdmin(deps: AdminDeps) {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
  })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const ready = deps.ready()
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' })
  })
  app.get('/metrics', async (_request, reply) => {
    const text = await deps.metrics.registry.metrics()
    return reply.type(deps.metrics.registry.contentType).send(text)
  })
  return app
}
