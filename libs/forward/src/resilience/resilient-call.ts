import { setTimeout as sleep } from 'node:timers/promises'
import { upstreamSignals, type LaneSignals, type Writable } from '@fairlane/protocol'
import type { UpstreamResponse } from '../upstream-answer.ts'
import type { RetryBudget } from './retry-budget.ts'
import { errorOutcome, statusOutcome, type Outcome } from './upstream-outcome.ts'

/** An endpoint as the call sees it. */
export interface CallEndpoint {
  readonly id: string
  readonly region?: string
}

export interface ResilientCallOptions<E extends CallEndpoint> {
  /** The endpoints in the order to try now (the selector's answer); asked before each attempt. */
  readonly order: () => readonly E[]
  /**
   * Sends one attempt (`hedge`: the second call of a race); rejects on a transport failure
   * (its cause says which).
   */
  readonly send: (endpoint: E, signal: AbortSignal, hedge: boolean) => Promise<UpstreamResponse>
  /** Health bookkeeping of an attempt that was not aborted on our side. */
  readonly record: (endpoint: E, outcome: Outcome) => void
  /** p95 latency of an endpoint, for a hedge delay taken from observation. */
  readonly p95Ms: (endpoint: E) => number | undefined
  /**
   * Before a retry: gives the previous admission back, with what the upstream said so the
   * lane adopts it (a named time blocks the whole lane until then).
   */
  readonly release: (said: LaneSignals) => void
  /** Then waits in the lane again. Rejects when the lane refuses; that error is the client's answer. */
  readonly admit: () => Promise<void>
  /** Whether this request may be sent more than once (idempotent and its body replayable). */
  readonly repeatable: boolean
  readonly attempts: number
  readonly maxRetryMs: number
  /** The target's retry budget; without one, nothing is retried or raced. */
  readonly budget?: RetryBudget
  /** Race a second endpoint after this delay: a number, 'p95' (observed), or undefined (no race). */
  readonly hedge: number | 'p95' | undefined
  /** Wall clock, for Retry-After dates. */
  readonly wallClock: () => number
  /** Monotonic clock, for latencies. */
  readonly now: () => number
  /** The client's signal: it aborts every attempt and every wait. */
  readonly signal: AbortSignal
  /** Told as each upstream request beyond the first is sent, and why it was sent. */
  readonly onExtraAttempt?: (kind: ExtraAttemptKind) => void
}

/** Why an upstream request beyond a request's first was sent. */
export type ExtraAttemptKind = 'retry' | 'failover' | 'hedge'

export interface CallResult<E extends CallEndpoint> {
  readonly response: UpstreamResponse
  readonly endpoint: E
  /** Upstream requests sent, hedges included. */
  readonly attempts: number
  /** What the answering upstream said about its limits, for the lane. */
  readonly said: LaneSignals
}

type Settled<E> =
  | { readonly endpoint: E; readonly response: UpstreamResponse }
  | { readonly endpoint: E; readonly error: unknown }

/** Statuses after which another endpoint may do better. */
const FAILOVER = new Set([500, 502, 503, 504])
/** Statuses that name a time to come back (Retry-After, a spent limit's reset). */
const COME_BACK = new Set([429, 503])

/** What an answer says about the upstream's limits, relative to now. */
function laneSignals(response: UpstreamResponse, wallClock: number): LaneSignals {
  const signals = upstreamSignals(response.headers, wallClock)
  // Filled in place: every answer comes here, and most say nothing beyond their status.
  const said: Writable<LaneSignals> = { status: response.status }
  if (signals.retryAt !== undefined) said.retryAfterMs = Math.max(0, signals.retryAt - wallClock)
  if (signals.rps !== undefined) said.rps = signals.rps
  if (signals.maxConcurrent !== undefined) said.maxConcurrent = signals.maxConcurrent
  return said
}

/**
 * One request's upstream call with its retries, failover and racing, as the design says:
 * a 429 or 503 that names a time waits until then (never more than maxRetryMs in all) and
 * goes back through the lane; a connect error, a reset, a timeout or a 5xx goes to the next
 * endpoint in the order, through the lane as well; a hedge races a second endpoint after a
 * delay and the first good answer wins, the other is aborted. Only a repeatable request is
 * sent twice, every retry and hedge takes from the target's budget, and when the retries
 * run out the last answer is the client's, as the upstream gave it.
 */
export async function resilientCall<E extends CallEndpoint>(
  options: ResilientCallOptions<E>,
): Promise<CallResult<E>> {
  let attempts = 0
  let waitedMs = 0
  // Why the next attempt is sent, once it is: an admission refused meanwhile sends none.
  let why: ExtraAttemptKind | undefined
  const counted = (hedge: boolean) => {
    attempts++
    const kind = hedge ? 'hedge' : why
    why = undefined
    if (kind) options.onExtraAttempt?.(kind)
  }
  // Made at the first failure: most calls never fail.
  let failed: Set<string> | undefined
  options.budget?.request()
  for (;;) {
    const order = options.order()
    const candidates = failed ? failedLast(order, failed) : order
    const first = candidates[0] as E
    // Only a repeatable request with a hedge delay races a second endpoint.
    const second =
      options.repeatable && options.hedge !== undefined
        ? candidates.find((e) => e !== first)
        : undefined
    const settled = await race(options, first, second, counted)
    const last = attempts >= options.attempts
    if ('response' in settled) {
      const { response, endpoint } = settled
      const said = laneSignals(response, options.wallClock())
      const comeBack = COME_BACK.has(response.status) && said.retryAfterMs !== undefined
      const failover = FAILOVER.has(response.status) && !comeBack
      const retryable =
        (comeBack || failover || response.status === 429) && options.repeatable && !last
      // Most answers end here: nothing below is worked out for them.
      if (!retryable) return { response, endpoint, attempts, said }
      // A 429 without a time, or a failover with no endpoint left untried, backs off.
      const exhausted = candidates.every((e) => e === endpoint || failed?.has(e.id))
      const wait = comeBack
        ? (said.retryAfterMs ?? 0)
        : response.status === 429 || (failover && exhausted)
          ? backoff(attempts)
          : 0
      if (waitedMs + wait > options.maxRetryMs || !options.budget?.tryRetry()) {
        return { response, endpoint, attempts, said }
      }
      if (failover) (failed ??= new Set()).add(endpoint.id)
      why = failover ? 'failover' : 'retry'
      discard(response)
      waitedMs += wait
      options.release(said)
      if (wait > 0) await sleep(wait, undefined, { signal: options.signal })
      await options.admit()
      continue
    }
    const { error, endpoint } = settled
    if (options.signal.aborted || !options.repeatable || last || !options.budget?.tryRetry()) {
      throw error
    }
    const failedNow = (failed ??= new Set())
    failedNow.add(endpoint.id)
    why = 'failover'
    options.release({ status: 0 })
    if (candidates.every((e) => failedNow.has(e.id)))
      await sleep(backoff(attempts), undefined, { signal: options.signal })
    await options.admit()
  }
}

/** Failover: endpoints that failed this request go last; when all have, the order resets. */
function failedLast<E extends CallEndpoint>(
  order: readonly E[],
  failed: Set<string>,
): readonly E[] {
  const fresh = order.filter((e) => !failed.has(e.id))
  return fresh.length > 0 ? [...fresh, ...order.filter((e) => failed.has(e.id))] : order
}

/**
 * One attempt, settled either way, with its outcome recorded for the endpoint's health (an
 * error only when the abort was not ours).
 */
async function attempt<E extends CallEndpoint>(
  options: ResilientCallOptions<E>,
  endpoint: E,
  signal: AbortSignal,
  hedge: boolean,
): Promise<Settled<E>> {
  const startedAt = options.now()
  let response: UpstreamResponse
  try {
    response = await options.send(endpoint, signal, hedge)
  } catch (error) {
    const outcome = errorOutcome(error, options.now() - startedAt)
    if (outcome && !signal.aborted) options.record(endpoint, outcome)
    return { endpoint, error }
  }
  options.record(endpoint, statusOutcome(response.status, options.now() - startedAt))
  return { endpoint, response }
}

/** Reads an unused answer to its end, so its connection can serve the next request. */
function discard(response: UpstreamResponse): void {
  // A body collected whole arrives anyway; only its failure needs a taker.
  const whole = response.whole
  if (whole) {
    whole.catch(() => undefined)
    return
  }
  response.body.on('error', () => undefined)
  response.body.resume()
}

/**
 * A 429 that names no time, or a failure with every endpoint tried: back off 0.5, 1, 2…
 * seconds (for a 429 the lane's rate is cut meanwhile).
 */
function backoff(attempt: number): number {
  return Math.min(500 * 2 ** (attempt - 1), 8_000)
}

/**
 * Sends to `first` and, when a hedge is due and allowed, to `second` after the delay; the
 * first good answer wins and the other call is aborted. A bad answer waits for the other
 * call, if any, before it is returned.
 */
function race<E extends CallEndpoint>(
  options: ResilientCallOptions<E>,
  first: E,
  second: E | undefined,
  counted: (hedge: boolean) => void,
): Promise<Settled<E>> {
  const delay =
    second === undefined
      ? undefined
      : options.hedge === 'p95'
        ? options.p95Ms(first)
        : options.hedge
  if (second === undefined || delay === undefined) {
    // A lone call goes with the client's signal: only a call that may lose a race needs its own.
    // Returned as it is, not from an async function, which would wrap it in one more promise.
    counted(false)
    return attempt(options, first, options.signal, false)
  }
  return hedged(options, first, second, delay, counted)
}

/** A call to `first` and, after `delay`, a hedge to `second`: the first good answer wins. */
async function hedged<E extends CallEndpoint>(
  options: ResilientCallOptions<E>,
  first: E,
  second: E,
  delay: number,
  counted: (hedge: boolean) => void,
): Promise<Settled<E>> {
  const calls: { endpoint: E; controller: AbortController; result: Promise<Settled<E>> }[] = []
  const start = (endpoint: E, hedge: boolean) => {
    counted(hedge)
    const controller = new AbortController()
    const onAbort = () => controller.abort(options.signal.reason)
    options.signal.addEventListener('abort', onAbort, { once: true })
    const result = attempt(options, endpoint, controller.signal, hedge)
    const entry = { endpoint, controller, result }
    void result.finally(() => options.signal.removeEventListener('abort', onAbort))
    calls.push(entry)
    return entry
  }
  const good = (s: Settled<E>) =>
    'response' in s && !FAILOVER.has(s.response.status) && s.response.status !== 429

  const primary = start(first, false)

  let timer: NodeJS.Timeout | undefined
  const hedged = new Promise<'hedge'>((resolve) => {
    timer = setTimeout(() => resolve('hedge'), delay)
  })
  const early = await Promise.race([primary.result, hedged])
  if (early !== 'hedge') {
    clearTimeout(timer)
    return early
  }
  if (!options.budget?.tryRetry()) return primary.result
  start(second, true)
  // The first good answer wins; a bad one waits for the other call.
  const pending = new Set(calls)
  let fallback: Settled<E> | undefined
  while (pending.size > 0) {
    const next = await Promise.race([...pending].map((c) => c.result.then((s) => ({ c, s }))))
    pending.delete(next.c)
    if (good(next.s)) {
      if (fallback && 'response' in fallback) discard(fallback.response)
      for (const loser of pending) {
        loser.controller.abort()
        void loser.result.then((s) => ('response' in s ? discard(s.response) : undefined))
      }
      return next.s
    }
    // Without a good answer, an answer beats an error; later answers are dropped.
    if (!fallback) fallback = next.s
    else if ('response' in next.s) {
      if ('response' in fallback) discard(next.s.response)
      else fallback = next.s
    }
  }
  return fallback as Settled<E>
}
