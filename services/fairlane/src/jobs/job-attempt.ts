import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { FairlaneConfig } from '@fairlane/config'
import { clientResponseHeaders, type UpstreamResponse } from '@fairlane/forward'
import type { AttemptResult, JobRecord, JobResponse } from '@fairlane/jobs'
import { ERROR_CODES, FairlaneError } from '@fairlane/protocol'
import type { RequestLines } from '@fairlane/telemetry'
import type { Principal } from '../keys/key-index.ts'
import type { Exchange } from '../ingress/exchange.ts'
import { admit, ticketOf } from '../ingress/stages/admit.ts'
import { correlate } from '../ingress/stages/correlate.ts'
import { forward, type ForwardDeps } from '../ingress/stages/forward.ts'
import { recordRequest } from '../ingress/stages/request-log.ts'
import { resolve, type ResolveDeps } from '../ingress/stages/resolve.ts'
import { observeResponseCost } from '../ingress/response-cost.ts'
import { asFairlaneError, metered } from '../ingress/stages/respond.ts'
import type { JobTracing } from './job-tracing.ts'

export interface JobAttemptDeps extends ResolveDeps, ForwardDeps {
  /** The request log line of each attempt goes here, as a request's does. */
  readonly lines: RequestLines
  /** A span per attempt, its stages' spans under it; absent while traces are off. */
  readonly jobTracing?: JobTracing
}

/** Refusals that another attempt cannot change: the job fails at once. */
const FINAL_CODES = new Set([
  'unauthenticated',
  'forbidden_target',
  'destination_blocked',
  'bad_request',
  'not_found',
  'payload_too_large',
  'method_not_allowed',
])

/** The key a job was submitted with, in this config; undefined once revoked. */
export function principalOf(
  config: FairlaneConfig,
  workspaceName: string,
  keyId: string,
): Principal | undefined {
  const workspace = Object.hasOwn(config.workspaces, workspaceName)
    ? config.workspaces[workspaceName]
    : undefined
  const key = workspace?.keys.find((k) => k.id === keyId)
  return workspace && key ? { workspaceName, workspace, key } : undefined
}

/**
 * The config an attempt sees. Its target waits for no Retry-After within the attempt
 * (maxRetryMs 0): a 429 or 503 that names a time ends the attempt and the job is stored
 * with that time, instead of a worker slot sleeping through it; failover to another endpoint,
 * which waits for nothing, stays. For a raced job the target is narrowed to the raced
 * endpoints (named, or those of the raced regions), hedged at once, so the target's own race
 * sends to them together and keeps the first good answer (the other call is aborted).
 */
function attemptConfig(job: JobRecord, config: FairlaneConfig): FairlaneConfig {
  const name = job.body.request.target
  const target =
    name !== undefined && Object.hasOwn(config.targets, name) ? config.targets[name] : undefined
  if (name === undefined || !target) return config
  const race = job.body.race
  const endpoints = race
    ? target.endpoints.filter((e) =>
        race.endpoints
          ? race.endpoints.includes(e.url)
          : race.regions?.includes(e.region ?? '') === true,
      )
    : target.endpoints
  return {
    ...config,
    targets: {
      ...config.targets,
      [name]: {
        ...target,
        endpoints,
        retry: {
          ...target.retry,
          maxRetryMs: 0,
          // A race needs a second call to exist; the retry budget still bounds it.
          attempts: race
            ? Math.max(target.retry.attempts, endpoints.length)
            : target.retry.attempts,
        },
        ...(race ? { hedge: { ...target.hedge, enabled: true, delayMs: 1 } } : {}),
      },
    },
  }
}

/** The job's request as the request a client would have sent to the proxy port. */
function requestOf(job: JobRecord, attempt: number): IncomingMessage {
  const { request } = job.body
  const req = new IncomingMessage(new Socket())
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value
  // The job id names the operation across attempts, so the upstream can deduplicate.
  headers['idempotency-key'] ??= job.id
  headers['x-request-id'] = `${job.id}.${attempt}`
  let body: Buffer | undefined
  if (request.bodyBase64 !== undefined) body = Buffer.from(request.bodyBase64, 'base64')
  else if (request.body !== undefined) {
    body = Buffer.from(JSON.stringify(request.body))
    headers['content-type'] ??= 'application/json'
  }
  if (request.url !== undefined) {
    headers['x-fairlane-url'] = request.url
    req.url = '/'
  } else {
    req.url = `/t/${request.target ?? ''}${request.path ?? '/'}`
  }
  req.method = request.method
  if (body) headers['content-length'] = String(body.length)
  req.headers = headers
  if (body) req.push(body)
  req.push(null)
  req.complete = true
  return req
}

/**
 * Reads up to `max` bytes of a body. The rest is dropped: still read to its end when
 * `readAll` (a metered response's cost is in the whole body), cut off otherwise.
 */
async function readUpTo(
  body: Readable,
  max: number,
  readAll: boolean,
): Promise<{ bytes: Buffer; cut: boolean }> {
  const chunks: Buffer[] = []
  let size = 0
  let cut = false
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (cut) continue
    if (size + chunk.length > max) {
      chunks.push(chunk.subarray(0, max - size))
      cut = true
      if (!readAll) break
      continue
    }
    chunks.push(chunk)
    size += chunk.length
  }
  return { bytes: Buffer.concat(chunks), cut }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The upstream's answer as the job keeps it: JSON as JSON, text as text, other bytes as
 * base64. Its real cost is read on the way, as the respond stage does for a request, so the
 * lease goes back with what the attempt really spent.
 */
async function jobResponse(
  x: Exchange,
  upstream: UpstreamResponse,
  maxBytes: number,
): Promise<JobResponse> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(clientResponseHeaders(upstream.headers))) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  const body = observeResponseCost(x.targetConfig, upstream.headers, upstream.body, (found) =>
    metered(x, found),
  )
  const { bytes, cut } = await readUpTo(body, maxBytes, body !== upstream.body)
  const base = { status: upstream.status, headers, ...(cut ? { truncated: true } : {}) }
  if (bytes.length === 0) return base
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { ...base, bodyBase64: bytes.toString('base64') }
  }
  if (!cut && /[/+]json\b/i.test(headers['content-type'] ?? '')) {
    try {
      return { ...base, body: JSON.parse(text) as unknown }
    } catch {
      // Not JSON after all: kept as the text it is.
    }
  }
  return { ...base, body: text }
}

/**
 * One attempt of a job through the caller's lane, by the same stages as a request on the
 * proxy port: resolve (target or approved URL, destination check), the ticket and its wait
 * in the key's lane, the forward with the target's retries, failover and hedging, and the
 * lease given back with what the upstream said. `signal` aborts it (cancel, shutdown).
 */
export async function runAttempt(
  job: JobRecord,
  config: FairlaneConfig,
  deps: JobAttemptDeps,
  signal: AbortSignal,
  resultMaxBytes: number,
): Promise<AttemptResult & { readonly region?: string }> {
  const attempt = job.attempts.length + 1
  const req = requestOf(job, attempt)
  const x: Exchange = correlate(req, new ServerResponse(req), attemptConfig(job, config))
  deps.jobTracing?.attempt(x, job, attempt)
  const onAbort = (): void => {
    // A cancelled job is a client that left: its ticket is withdrawn, nothing more is sent.
    x.closed = true
    x.abort.abort()
  }
  signal.addEventListener('abort', onAbort, { once: true })
  let status = 0
  try {
    const principal = principalOf(config, job.workspace, job.keyId)
    if (!principal) {
      throw new FairlaneError('unauthenticated', 'authenticate', 'the job’s key was revoked')
    }
    // The key was checked when the job was submitted; the job carries no secret to strip.
    x.presented = { secret: '', via: 'x-fairlane-key' }
    x.principal = principal
    x.workspace = principal.workspaceName
    x.keyId = principal.key.id
    x.stage = 'authenticate'
    await resolve(x, deps)
    ticketOf(x)
    const tier = job.body.tier
    if (tier !== undefined && x.ticket) {
      // The job waits at its own tier, which submission held to at most the key's.
      x.ticket = { ...x.ticket, tier }
      x.tier = tier
    }
    // Only a cancelled job withdraws its ticket (onAbort above).
    if (!(await admit(x, deps))) {
      throw new FairlaneError('internal', 'queue', 'the job was cancelled while queued')
    }
    const upstream = await forward(x, deps)
    const response = await jobResponse(x, upstream, resultMaxBytes)
    status = response.status
    const retryAfterMs = x.result?.said.retryAfterMs
    const region = x.result?.endpoint.region
    return {
      response,
      calls: x.attempts,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(region ? { region } : {}),
    }
  } catch (err) {
    const failure = asFairlaneError(x, err)
    x.code = failure.code
    x.error = failure.message
    status = ERROR_CODES[failure.code].status
    const retryAfter = Number(failure.headers['retry-after'])
    return {
      error: { code: failure.code, message: failure.message },
      calls: x.attempts,
      ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
      ...(FINAL_CODES.has(failure.code) ? { final: true } : {}),
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    const lease = x.lease
    if (lease) {
      const said = x.result?.said
      lease.release({
        ...(x.realCost !== undefined ? { cost: x.realCost } : {}),
        ...(x.realCents !== undefined ? { cents: x.realCents } : {}),
        ...(said ? { upstream: said } : {}),
      })
      x.lease = undefined
    }
    recordRequest(x, status, deps.metrics, deps.lines)
    if (x.span) deps.jobTracing?.attempted(x, x.span, status)
  }
}
