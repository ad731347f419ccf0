import Fastify, { LogController } from 'fastify'
import {
  LANE_REFUSALS,
  WAIT_BUCKETS_MS,
  type FairlaneMetrics,
  type LaneView,
  type Logger,
} from '@fairlane/telemetry'
import type { UpstreamHealthView } from '../ingress/upstreams.ts'
import type { EditableConfigStore } from '../store/redis-config-store.ts'
import { ADMIN_API_PREFIX, adminApi } from './admin-api.ts'

export interface AdminDeps {
  readonly metrics: FairlaneMetrics
  readonly logger: Logger
  /**
   * What the node lacks to take traffic ("starting", "joining", "nats", "redis", "draining"); none:
   * ready. Load balancers stop sending traffic while anything is named.
   */
  readonly missing: () => readonly string[]
  /**
   * The admin API under /admin/v1, for a node whose config lives in a store it can change;
   * `token` is FAIRLANE_ADMIN_TOKEN (unset: the API answers 403). Without it there is no
   * admin API.
   */
  readonly api?: { readonly token: string | undefined; readonly store: EditableConfigStore }
  /** Health of every upstream endpoint as this node sees it (GET /upstreams). */
  readonly upstreams?: () => readonly UpstreamHealthView[]
  /** The lanes this node's ingress saw lately (GET /lanes, read by `fairlane top`). */
  readonly lanes?: () => LanesView
}

/** The body of GET /lanes. */
interface LanesView {
  readonly node: string
  readonly region: string | undefined
  readonly windowSeconds: number
  readonly lanes: readonly LaneView[]
}

/**
 * The operator's port: liveness, readiness, Prometheus metrics and, in a cluster, the admin
 * API. Kept off the proxy port so that it is never reachable through a public listener by
 * accident.
 */
export function buildAdmin(deps: AdminDeps) {
  const app = Fastify({
    loggerInstance: deps.logger,
    logController: new LogController({ disableRequestLogging: true }),
  })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const missing = deps.missing()
    if (missing.length === 0) return reply.code(200).send({ status: 'ready' })
    return reply.code(503).send({ status: 'not ready', missing })
  })
  // OpenMetrics (with exemplars) for a scraper that asks for it, as Prometheus does.
  app.get('/metrics', async (request, reply) => {
    const { contentType, text } = await deps.metrics.exposition(request.headers.accept)
    return reply.type(contentType).send(text)
  })
  // Read-only like /metrics, and holds no secret: endpoint URLs carry no credentials.
  app.get('/upstreams', async () => deps.upstreams?.() ?? [])
  // Read-only like /metrics: workspace names, key ids and caller ids, never a key or credential.
  app.get('/lanes', async () => {
    const view = deps.lanes?.()
    return {
      node: view?.node ?? '',
      region: view?.region ?? null,
      windowSeconds: view?.windowSeconds ?? 0,
      waitBucketsMs: WAIT_BUCKETS_MS,
      refusalCodes: LANE_REFUSALS,
      lanes: view?.lanes ?? [],
    }
  })
  if (deps.api)
    void app.register(adminApi({ ...deps.api, logger: deps.logger }), { prefix: ADMIN_API_PREFIX })
  return app
}
