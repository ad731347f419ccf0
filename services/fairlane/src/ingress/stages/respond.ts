import type { OutgoingHttpHeaders } from 'node:http'
import type { Readable } from 'node:stream'
import { clientResponseHeaders, upstreamError, type UpstreamResponse } from '@fairlane/forward'
import { ERROR_CODES, FairlaneError, toProblem } from '@fairlane/protocol'
import { hasBody, type Exchange } from '../exchange.ts'
import type { TargetConfig } from '@fairlane/config'
import { openAiError } from '../llm/openai-error.ts'
import { priceTableOf, type Price } from '../llm/model-table.ts'
import { centsOfUsage } from '../llm/openai-request.ts'
import { costInBody, costInHeader, observeResponseCost, type Metered } from '../response-cost.ts'
import { TurnEndAnswers } from '../turn-end-answers.ts'
import { withoutQuery } from '../without-query.ts'

/** Whole answers go out together at the end of the event-loop turn. */
const answers = new TurnEndAnswers<Exchange>(unwritable)

/**
 * An answer Node refused to write (a header it will not send): the upstream's gets a problem
 * answer instead; a problem answer refused too (it carries the client's X-Request-Id) cuts
 * the connection rather than be tried again.
 */
function unwritable(x: Exchange, err: unknown): void {
  if (x.code !== undefined) {
    x.res.destroy()
    return
  }
  // The refused writeHead had set the upstream status's reason phrase; the problem gets its own.
  x.res.statusMessage = ''
  sendProblem(x, asFairlaneError(x, err))
}

function responseHeaders(x: Exchange, upstream: UpstreamResponse): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = clientResponseHeaders(upstream.headers)
  const limits = x.limitHeaders
  if (limits) for (const name in limits) headers[name] = limits[name]
  headers['x-request-id'] = x.requestId
  headers['x-fairlane-queue-ms'] = String(Math.round(x.queueMs ?? 0))
  headers['x-fairlane-attempts'] = String(x.attempts)
  const region = x.result?.endpoint.region
  if (region) headers['x-fairlane-region'] = region
  return headers
}

/**
 * Stage 7: the upstream's answer with RateLimit headers, X-Request-Id and Fairlane's own.
 * A small body of known length (the forwarder collects it whole) is written with the head in
 * one go, with the turn's other whole answers (TurnEndAnswers): fewer syscalls than relaying
 * a stream, and an upstream failure while reading it still gets a proper answer. Anything
 * else streams as it comes.
 */
export async function respond(x: Exchange, upstream: UpstreamResponse): Promise<void> {
  const { res } = x
  const headers = responseHeaders(x, upstream)
  // A stream whose usage chunk Fairlane asked for is relayed event by event, to drop that chunk.
  const collected = x.usageAdded ? undefined : upstream.whole
  if (collected) {
    let whole: Buffer
    try {
      whole = await collected
    } catch (err) {
      throw upstreamError(err)
    }
    const inBody = costInBody(x.targetConfig, upstream.headers, whole)
    x.realCost = costInHeader(x.targetConfig, upstream.headers) ?? inBody?.cost
    if (inBody) metered(x, inBody)
    x.stage = 'respond'
    if (res.destroyed) return
    headers['content-length'] = whole.length
    answers.end(res, upstream.status, headers, whole, x)
    return
  }
  x.stage = 'respond'
  const body = observeResponseCost(
    x.targetConfig,
    upstream.headers,
    upstream.body,
    (found) => metered(x, found),
    x.usageAdded,
  )
  relay(x, upstream.status, headers, body)
}

/**
 * What the response's usage says: its cost, and its price when the model has one (the model
 * the request named, or else the one the answer names: a /t/ request whose body was not read
 * as a model's is priced too).
 */
export function metered(x: Exchange, found: Metered): void {
  x.realCost = found.cost
  const price = x.price ?? answeredPrice(x.targetConfig, found.holder)
  if (price) x.realCents = centsOfUsage(found.holder, price) ?? x.realCents
}

function answeredPrice(
  target: TargetConfig | undefined,
  holder: Readonly<Record<string, unknown>>,
): Price | undefined {
  const model = holder['model']
  if (!target || typeof model !== 'string') return undefined
  return priceTableOf(target).targetOf(model)
}

/**
 * Streams a body to the client. The head goes with the first chunk, so an upstream that
 * fails before sending any byte still gets a problem answer; after that the connection is
 * cut (the client sees a truncated response, never a spliced error).
 */
function relay(x: Exchange, status: number, headers: OutgoingHttpHeaders, body: Readable): void {
  const { res } = x
  res.statusCode = status
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined) res.setHeader(name, value)
  }
  body.once('error', (err) => {
    if (res.headersSent) res.destroy()
    else sendProblem(x, upstreamError(err))
  })
  // A client that leaves stops the upstream body too.
  res.once('close', () => {
    if (!body.readableEnded) body.destroy()
  })
  body.pipe(res)
}

/**
 * A failure as problem+json (in OpenAI's error shape on the front door's routes), with the
 * RateLimit headers of any admission decision.
 */
export function sendProblem(x: Exchange, err: FairlaneError): void {
  const { res } = x
  x.stage = err.stage
  x.code = err.code
  x.error = withoutQuery(
    err.code === 'internal' && err.cause instanceof Error ? err.cause.message : err.message,
  )
  if (res.headersSent) {
    res.destroy()
    return
  }
  if (res.destroyed) return
  // Headers a relay set before its body failed are the upstream's, not this answer's.
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  const detail = withoutQuery(err.message)
  let body: string
  if (x.openai) body = JSON.stringify(openAiError(err, x.requestId, detail))
  else {
    const problem = toProblem(err, x.requestId)
    problem.detail = detail
    body = JSON.stringify(problem)
  }
  const headers: OutgoingHttpHeaders = { ...x.limitHeaders, ...err.headers }
  headers['x-request-id'] = x.requestId
  headers['content-type'] = x.openai ? 'application/json' : 'application/problem+json'
  headers['content-length'] = Buffer.byteLength(body)
  // Node would go on reading (and discarding) a body that has not fully arrived, for as long
  // as the client trickles it: the connection is closed instead.
  if (hasBody(x) && !x.req.complete) headers['connection'] = 'close'
  answers.end(res, ERROR_CODES[err.code].status, headers, body, x)
}

/** Anything thrown on the way, as the error the client sees. */
export function asFairlaneError(x: Exchange, err: unknown): FairlaneError {
  return err instanceof FairlaneError
    ? err
    : new FairlaneError('internal', x.stage, 'internal error', { cause: err })
}
