import type { FairlaneConfig } from '@fairlane/config'
import {
  FINISHED_STATES,
  checkJobBody,
  jobDocument,
  webhooksOf,
  type JobBody,
  type JobState,
  type JobStore,
} from '@fairlane/jobs'
import type { DestinationPolicy } from '@fairlane/forward'
import { FairlaneError, formatTraceParent } from '@fairlane/protocol'
import type { Principal } from '../keys/key-index.ts'
import { tooLarge } from '../ingress/body-limit.ts'
import type { Exchange } from '../ingress/exchange.ts'
import { hostName, matchRoute, routeTableOf } from '../ingress/inbound/route-table.ts'
import { resolveRoute } from '../ingress/route.ts'

/** What the API needs of the node's jobs: the store (opened on first use) and the worker. */
export interface JobsBackend {
  store(): JobStore
  /** A job was submitted: the worker looks at once instead of at its next poll. */
  submitted(): void
  /** A job was cancelled: its attempt in flight, if any, stops. */
  cancelled(id: string): void
  /** Holds URLs to the workspace's approved hosts at submission, as the proxy port does. */
  readonly policy: DestinationPolicy
}

const JOB_PATH = /^\/v1\/jobs(?:\/([A-Za-z0-9_-]{1,64})(\/redeliver)?)?\/?$/
const STATES: ReadonlySet<string> = new Set([
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
])
const MAX_IDEMPOTENCY_KEY = 255
const MAX_PAGE = 100

/**
 * Whether a request on the proxy port is for the jobs API: a path under /v1/jobs without
 * X-Fairlane-Url (the URL form goes to its URL whatever the path: clients send it on the
 * URL's own path) that no inbound route claims (a route of the operator's own API under that
 * path wins).
 */
export function isJobsRequest(x: Exchange): boolean {
  if (x.path !== '/v1/jobs' && !x.path.startsWith('/v1/jobs/')) return false
  if (x.req.headers['x-fairlane-url'] !== undefined) return false
  const routes = routeTableOf(x.config)
  return routes.length === 0 || !matchRoute(routes, hostName(x.req.headers.host), x.path)
}

function notFound(): FairlaneError {
  return new FairlaneError('job_not_found', 'jobs', 'no job with this id in this workspace')
}

function send(
  x: Exchange,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value)
  x.stage = 'respond'
  x.res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': x.requestId,
  })
  x.res.end(body)
}

async function readJson(x: Exchange): Promise<unknown> {
  const max = x.config.server.maxBodyBytes
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of x.req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > max) throw tooLarge(max, 'forward')
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    throw new FairlaneError(
      'bad_request',
      'jobs',
      'the body must be JSON (see docs/job.schema.json)',
    )
  }
}

/**
 * What the schema cannot check, against this config and key: every destination resolves for
 * the workspace (targets it may use; a URL's scheme, port and approved host, as a request's
 * X-Fairlane-Url is held to them, its address checked at each attempt), webhooks have a
 * secret to be signed with, the tier exists and is not above the key's, the deadline is allowed, and no header
 * carries the Fairlane key itself.
 */
function checkAgainstConfig(
  body: JobBody,
  config: FairlaneConfig,
  principal: Principal,
  secret: string,
  policy: DestinationPolicy,
): void {
  for (const job of [body, body.onSuccess, body.onFailure]) {
    if (!job) continue
    const { request } = job
    // Templates in a follow-up's destination are filled later; its target is known now.
    const templated = (s: string | undefined) => s?.includes('{{') === true
    if (!templated(request.url) && !templated(request.path)) {
      const route = resolveRoute(
        config,
        principal,
        request.url !== undefined ? '/' : `/t/${request.target ?? ''}${request.path ?? '/'}`,
        request.url,
      )
      if (request.url !== undefined) policy.approve(route.url, route.rule)
    }
    if (job.race && request.target !== undefined) {
      const endpoints = config.targets[request.target]?.endpoints ?? []
      const regions = new Set(endpoints.map((e) => e.region))
      const urls = new Set(endpoints.map((e) => e.url))
      const missing = [
        ...(job.race.regions ?? [])
          .filter((r) => !regions.has(r))
          .map((r) => `an endpoint in ${r}`),
        ...(job.race.endpoints ?? []).filter((u) => !urls.has(u)).map((u) => `the endpoint ${u}`),
      ]
      if (missing.length > 0) {
        throw new FairlaneError(
          'bad_request',
          'jobs',
          `race: target ${request.target} has no ${missing.join(', no ')}`,
        )
      }
    }
    const hooks = webhooksOf(job)
    for (const hook of hooks) {
      const route = resolveRoute(
        config,
        principal,
        hook.url !== undefined ? '/' : `/t/${hook.target ?? ''}${hook.path ?? '/'}`,
        hook.url,
      )
      if (hook.url !== undefined) policy.approve(route.url, route.rule)
    }
    if (hooks.length > 0 && principal.workspace.webhookSecrets.length === 0) {
      throw new FairlaneError(
        'bad_request',
        'jobs',
        `workspace ${principal.workspaceName} has no webhookSecrets to sign webhooks with`,
      )
    }
    if (job.tier !== undefined) {
      const asked = config.tiers[job.tier]
      const own = config.tiers[principal.key.tier ?? principal.workspace.tier]
      if (!Object.hasOwn(config.tiers, job.tier) || !asked) {
        throw new FairlaneError('bad_request', 'jobs', `tier "${job.tier}" is not configured`)
      }
      if (own && asked.priority < own.priority) {
        throw new FairlaneError(
          'tier_not_allowed',
          'jobs',
          `tier "${job.tier}" is above this key’s tier`,
        )
      }
    }
    if (job.deadlineMs !== undefined && job.deadlineMs > config.jobs.maxDeadlineMs) {
      throw new FairlaneError(
        'bad_request',
        'jobs',
        `deadlineMs must be at most ${config.jobs.maxDeadlineMs} (jobs.maxDeadlineMs)`,
      )
    }
    if (Object.values(request.headers).some((v) => secret !== '' && v.includes(secret))) {
      throw new FairlaneError(
        'bad_request',
        'jobs',
        'request.headers must not carry the Fairlane key',
      )
    }
  }
}

/**
 * The jobs API on the proxy port, for an authenticated key: POST /v1/jobs, GET /v1/jobs,
 * GET and DELETE /v1/jobs/{id}, POST /v1/jobs/{id}/redeliver. A workspace sees only its own
 * jobs; another workspace's id is not found.
 */
export async function serveJobs(x: Exchange, backend: JobsBackend): Promise<void> {
  x.stage = 'jobs'
  const principal = x.principal
  if (!principal) throw new FairlaneError('internal', 'jobs', 'jobs before authenticate')
  const match = JOB_PATH.exec(x.path)
  if (!match) throw notFound()
  const [, id, redeliver] = match
  const workspace = principal.workspaceName
  const allow = (methods: string) =>
    new FairlaneError('method_not_allowed', 'jobs', `use ${methods}`, {
      headers: { allow: methods },
    })

  if (id === undefined) {
    if (x.method === 'POST') return submit(x, backend, principal)
    if (x.method !== 'GET') throw allow('GET, POST')
    const query = new URL(x.req.url ?? '/', 'http://jobs').searchParams
    const state = query.get('state')
    if (state !== null && !STATES.has(state)) {
      throw new FairlaneError(
        'bad_request',
        'jobs',
        `state must be one of ${[...STATES].join(', ')}`,
      )
    }
    const cursor = query.get('cursor')
    if (cursor !== null && !/^\d+$/.test(cursor)) {
      throw new FairlaneError('bad_request', 'jobs', 'cursor must be one returned by this API')
    }
    const limit = Math.min(Number(query.get('limit') ?? 50) || 50, MAX_PAGE)
    const page = await backend.store().list(workspace, {
      ...(state !== null ? { state: state as JobState } : {}),
      ...(cursor !== null ? { cursor } : {}),
      limit,
    })
    return send(x, 200, {
      jobs: page.jobs.map(jobDocument),
      ...(page.cursor !== undefined ? { cursor: page.cursor } : {}),
    })
  }
  const store = backend.store()
  if (redeliver) {
    if (x.method !== 'POST') throw allow('POST')
    const job = await store.redeliver(workspace, id)
    if (!job) throw notFound()
    if (!FINISHED_STATES.has(job.state)) {
      throw new FairlaneError(
        'job_not_finished',
        'jobs',
        'the job has not finished: nothing to deliver yet',
      )
    }
    backend.submitted()
    return send(x, 202, jobDocument(job))
  }
  if (x.method === 'GET') {
    const job = await store.get(workspace, id)
    if (!job) throw notFound()
    return send(x, 200, jobDocument(job))
  }
  if (x.method === 'DELETE') {
    const before = await store.get(workspace, id)
    if (!before) throw notFound()
    if (FINISHED_STATES.has(before.state)) {
      throw new FairlaneError(
        'job_finished',
        'jobs',
        `the job has already ${before.state === 'cancelled' ? 'been cancelled' : before.state}`,
      )
    }
    const job = await store.cancel(workspace, id)
    if (!job) throw notFound()
    if (job.state !== 'cancelled') {
      throw new FairlaneError('job_finished', 'jobs', `the job has already ${job.state}`)
    }
    backend.cancelled(id)
    backend.submitted()
    return send(x, 200, jobDocument(job))
  }
  throw allow('GET, DELETE')
}

async function submit(x: Exchange, backend: JobsBackend, principal: Principal): Promise<void> {
  const sent = x.req.headers['idempotency-key']
  const idempotencyKey = Array.isArray(sent) ? sent[0] : sent
  if (
    idempotencyKey !== undefined &&
    (idempotencyKey === '' || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)
  ) {
    throw new FairlaneError(
      'bad_request',
      'jobs',
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`,
    )
  }
  const checked = checkJobBody(await readJson(x))
  if (!checked.ok) {
    throw new FairlaneError('bad_request', 'jobs', `invalid job: ${checked.problems.join('; ')}`)
  }
  const { body } = checked
  const config = x.config
  checkAgainstConfig(body, config, principal, x.presented?.secret ?? '', backend.policy)
  const result = await backend.store().submit({
    workspace: principal.workspaceName,
    keyId: principal.key.id,
    body,
    deadlineMs: Math.min(
      body.deadlineMs ?? config.jobs.defaultDeadlineMs,
      config.jobs.maxDeadlineMs,
    ),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    // Its attempts and deliveries become spans of the submission's trace.
    ...(x.span ? { traceparent: formatTraceParent(x.trace) } : {}),
  })
  if (result.kind === 'conflict') {
    throw new FairlaneError(
      'idempotency_conflict',
      'jobs',
      'this Idempotency-Key was used for a different job within 24 h',
      { headers: { location: `/v1/jobs/${result.job.id}` } },
    )
  }
  if (result.kind === 'created') backend.submitted()
  const { job } = result
  send(
    x,
    202,
    { id: job.id, state: job.state, chainId: job.chainId, location: `/v1/jobs/${job.id}` },
    {
      location: `/v1/jobs/${job.id}`,
      ...(result.kind === 'replayed' ? { 'idempotent-replayed': 'true' } : {}),
    },
  )
}
