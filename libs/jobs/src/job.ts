import type { JobBody } from './job-body.ts'

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

export const FINISHED_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled'])

/** One try of the upstream request, as the job document shows it. Times are unix ms. */
export interface JobAttempt {
  readonly startedAt: number
  readonly finishedAt: number
  /** The upstream's status; absent when none answered. */
  readonly status?: number
  readonly region?: string
  /** Upstream calls made within this attempt (retries and failover of the target's policy). */
  readonly calls?: number
  /** The error code when no usable answer came (rate_limited, upstream_unavailable, …). */
  readonly error?: string
  /** When the next attempt was scheduled, if one was. */
  readonly retryAt?: number
}

/** The upstream's answer, kept up to jobs.resultMaxBytes of body. */
export interface JobResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** JSON when the upstream sent JSON, text when it sent UTF-8 text. */
  readonly body?: unknown
  /** Any other bytes. */
  readonly bodyBase64?: string
  /** The body was longer than jobs.resultMaxBytes and is cut. */
  readonly truncated?: boolean
}

type DeliveryState = 'pending' | 'delivered' | 'dead'

/** One webhook receiver of a finished job. */
export interface Delivery {
  readonly index: number
  readonly state: DeliveryState
  readonly attempts: number
  /** When the first try was due: the maximum age counts from here. */
  readonly firstAt: number
  readonly nextAt: number
  readonly lastStatus?: number
  readonly lastError?: string
  readonly deliveredAt?: number
}

/** A job as the store keeps it. */
export interface JobRecord {
  readonly id: string
  readonly workspace: string
  readonly keyId: string
  readonly state: JobState
  readonly body: JobBody
  readonly createdAt: number
  readonly updatedAt: number
  /** The earliest time the next attempt may start. */
  readonly dueAt: number
  /** No attempt starts after this. */
  readonly deadlineAt: number
  readonly attempts: readonly JobAttempt[]
  readonly response?: JobResponse
  readonly error?: { readonly code: string; readonly message: string }
  readonly finishedAt?: number
  readonly idempotencyKey?: string
  /** The first job of a chain; its own id for a job that starts one. */
  readonly chainId: string
  readonly parentId?: string
  readonly followUps?: readonly string[]
  readonly deliveries: readonly Delivery[]
  /**
   * W3C traceparent of the span that submitted the job (the chain's first job's for a
   * follow-up): its attempts and webhook deliveries are spans of that trace. Not in the
   * job's document.
   */
  readonly traceparent?: string
}

const iso = (ms: number): string => new Date(ms).toISOString()

/**
 * The result's delivery as a whole: delivered once `quorum` receivers took it, dead once too
 * many are dead for the quorum to be met, pending otherwise.
 */
function deliveryState(deliveries: readonly Delivery[], quorum: number): DeliveryState {
  const delivered = deliveries.filter((d) => d.state === 'delivered').length
  if (delivered >= quorum) return 'delivered'
  const dead = deliveries.filter((d) => d.state === 'dead').length
  return deliveries.length - dead < quorum ? 'dead' : 'pending'
}

/** A URL or path without its query, which may hold a secret (`?api_key=…`), as logs show it. */
function withoutQuery(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * The job as GET /v1/jobs/{id} returns it and as webhooks receive it: the request without
 * its headers, body and query strings (which may carry the caller's own secrets, and every
 * webhook receiver gets this document), times as ISO dates.
 */
export function jobDocument(job: JobRecord): Record<string, unknown> {
  const { request } = job.body
  const hooks = job.body.webhooks ?? (job.body.webhook ? [job.body.webhook] : [])
  return {
    id: job.id,
    state: job.state,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    deadlineAt: iso(job.deadlineAt),
    ...(job.finishedAt !== undefined ? { finishedAt: iso(job.finishedAt) } : {}),
    ...(job.state === 'queued' ? { nextAttemptAt: iso(job.dueAt) } : {}),
    request: {
      method: request.method,
      ...(request.url !== undefined
        ? { url: withoutQuery(request.url) }
        : { target: request.target, path: withoutQuery(request.path ?? '/') }),
    },
    ...(job.body.tier !== undefined ? { tier: job.body.tier } : {}),
    ...(job.body.metadata ? { metadata: job.body.metadata } : {}),
    attempts: job.attempts.map((a) => ({
      startedAt: iso(a.startedAt),
      finishedAt: iso(a.finishedAt),
      ...(a.status !== undefined ? { status: a.status } : {}),
      ...(a.region !== undefined ? { region: a.region } : {}),
      ...(a.calls !== undefined ? { calls: a.calls } : {}),
      ...(a.error !== undefined ? { error: a.error } : {}),
      ...(a.retryAt !== undefined ? { retryAt: iso(a.retryAt) } : {}),
    })),
    ...(job.response ? { response: job.response } : {}),
    ...(job.error ? { error: job.error } : {}),
    chainId: job.chainId,
    ...(job.parentId !== undefined ? { parentId: job.parentId } : {}),
    ...(job.followUps?.length ? { followUps: job.followUps } : {}),
    ...(hooks.length > 0 && job.deliveries.length > 0
      ? { delivery: deliveryState(job.deliveries, job.body.quorum ?? hooks.length) }
      : {}),
    webhooks: hooks.map((hook, i) => {
      const d = job.deliveries.find((x) => x.index === i)
      return {
        ...(hook.url !== undefined
          ? { url: withoutQuery(hook.url) }
          : { target: hook.target, path: withoutQuery(hook.path ?? '/') }),
        state: d?.state ?? 'waiting',
        attempts: d?.attempts ?? 0,
        ...(d?.lastStatus !== undefined ? { lastStatus: d.lastStatus } : {}),
        ...(d?.lastError !== undefined ? { lastError: d.lastError } : {}),
        ...(d?.state === 'pending' ? { nextAt: iso(d.nextAt) } : {}),
        ...(d?.deliveredAt !== undefined ? { deliveredAt: iso(d.deliveredAt) } : {}),
      }
    }),
  }
}
