import type { FairlaneConfig } from '@fairlane/config'
import { upstreamError, type DestinationPolicy, type Forwarder } from '@fairlane/forward'
import { jobDocument, webhookHeaders, webhooksOf, type JobRecord } from '@fairlane/jobs'
import type { Span } from '@opentelemetry/api'
import { resolveRoute } from '../ingress/route.ts'
import { principalOf } from './job-attempt.ts'
import type { JobTracing } from './job-tracing.ts'

export interface WebhookSenderDeps {
  readonly policy: DestinationPolicy
  readonly forwarder: Forwarder
  readonly wallClock: () => number
  /** A span per delivery try; absent while traces are off. */
  readonly tracing?: JobTracing
}

/** What one delivery try came to: the receiver's status, or why none came. */
export interface DeliveryTry {
  readonly status?: number
  readonly error?: string
}

/** The path of a webhook by target, or the X-Fairlane-Url form for a url. */
function routeFor(hook: ReturnType<typeof webhooksOf>[number]): { rawUrl: string; url?: string } {
  return hook.url !== undefined
    ? { rawUrl: '/', url: hook.url }
    : { rawUrl: `/t/${hook.target ?? ''}${hook.path ?? '/'}` }
}

/**
 * Posts a finished job's document to one of its webhooks, signed per Standard Webhooks with
 * the workspace's first secret. The receiver is reached as a request would be: a target's
 * endpoint (with its injected headers) or a URL held to the workspace's approved hosts,
 * through the destination policy (public addresses only, pinned DNS). Redirects are not
 * followed. Never throws: a failure is a try to repeat later.
 */
export async function sendWebhook(
  job: JobRecord,
  index: number,
  config: FairlaneConfig,
  deps: WebhookSenderDeps,
  signal: AbortSignal,
): Promise<DeliveryTry> {
  const tracing = deps.tracing
  if (!tracing) return tryWebhook(job, index, config, deps, signal, undefined)
  const span = tracing.delivery(job, index)
  const tried = await tryWebhook(job, index, config, deps, signal, span)
  tracing.delivered(span, tried)
  return tried
}

async function tryWebhook(
  job: JobRecord,
  index: number,
  config: FairlaneConfig,
  deps: WebhookSenderDeps,
  signal: AbortSignal,
  span: Span | undefined,
): Promise<DeliveryTry> {
  const hook = webhooksOf(job.body)[index]
  const principal = principalOf(config, job.workspace, job.keyId)
  if (!hook || !principal) return { error: 'the job’s key was revoked' }
  const secrets = principal.workspace.webhookSecrets
  if (secrets.length === 0) return { error: 'the workspace has no webhookSecrets' }
  try {
    const { rawUrl, url } = routeFor(hook)
    const route = resolveRoute(config, principal, rawUrl, url)
    const destination = await deps.policy.check(route.url, route.rule)
    const body = JSON.stringify(jobDocument(job))
    const timestamp = Math.floor(deps.wallClock() / 1000)
    const path = route.path ?? destination.url.pathname + destination.url.search
    const headers: Record<string, string> = {
      ...Object.fromEntries(Object.entries(route.inject).map(([k, v]) => [k.toLowerCase(), v])),
      ...webhookHeaders(secrets, job.id, timestamp, body),
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'Fairlane-Webhooks',
      host: destination.hostHeader,
    }
    const response = await deps.forwarder.forward({
      method: 'POST',
      destination,
      path,
      headers: span
        ? (deps.tracing?.reaching(span, destination, path, headers) ?? headers)
        : headers,
      body: Buffer.from(body),
      timeouts: {
        connectMs: Math.min(route.timeouts.connectMs, config.jobs.webhooks.timeoutMs),
        headersMs: config.jobs.webhooks.timeoutMs,
        bodyMs: config.jobs.webhooks.timeoutMs,
      },
      signal,
    })
    response.body.resume()
    return { status: response.status }
  } catch (err) {
    const failure = upstreamError(err)
    return { error: `${failure.code}: ${failure.message}` }
  }
}
