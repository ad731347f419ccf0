import { errorFrom, problemError } from './fairlane-error.ts'
import {
  FINAL_STATES,
  type Job,
  type JobPage,
  type JobRequest,
  type ListJobsOptions,
  type QueueOptions,
  type QueuedJob,
} from './job.ts'
import { replayable } from './replayable-body.ts'

export interface FairlaneClientOptions {
  /** Fairlane's proxy port, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string
  /** The Fairlane key. */
  readonly key: string
  /**
   * How many times a request Fairlane refused with 429 or 503 and a Retry-After is sent
   * again after the wait (nothing reached the upstream, so any method may). Default 0.
   */
  readonly retries?: number
  /** A Retry-After longer than this is not waited for: the refusal is returned. Default 60 000. */
  readonly maxRetryWaitMs?: number
  /** The fetch to use (a test double, undici's with a dispatcher). Default: the global one. */
  readonly fetch?: typeof fetch
}

export interface WaitOptions {
  /** Give up (WaitTimeoutError) after this long. Default 60 000. */
  readonly timeoutMs?: number
  /** Between two reads of the job. Default 500. */
  readonly pollIntervalMs?: number
  readonly signal?: AbortSignal
}

/** A fetch whose relative URLs are resolved against a base. */
export type FairlaneFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** waitForJob ran out of time; `job` is the last state read. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError'
  readonly job: Job

  constructor(job: Job, timeoutMs: number) {
    super(`job ${job.id} still ${job.state} after ${timeoutMs} ms`)
    this.job = job
  }
}

function sleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const done = () => {
      signal?.removeEventListener('abort', abort)
      resolve()
    }
    const timer = setTimeout(done, ms)
    const abort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', abort, { once: true })
  })
}

/**
 * Fairlane's jobs API and its two synchronous proxy forms (`/t/<target>/…` and
 * `X-Fairlane-Url`), with one key and one base URL.
 */
export class FairlaneClient {
  readonly baseUrl: string
  readonly #key: string
  readonly #retries: number
  readonly #maxRetryWaitMs: number
  readonly #fetch: typeof fetch

  constructor(options: FairlaneClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#key = options.key
    this.#retries = options.retries ?? 0
    this.#maxRetryWaitMs = options.maxRetryWaitMs ?? 60_000
    this.#fetch = options.fetch ?? globalThis.fetch
  }

  /** The base URL to give an SDK for a target, e.g. `http://127.0.0.1:8080/t/openai`. */
  targetUrl(target: string): string {
    return `${this.baseUrl}/t/${encodeURIComponent(target)}`
  }

  /**
   * fetch through Fairlane. A path (`/t/echo/hello`) is sent to Fairlane; an absolute URL
   * elsewhere is sent in the URL form (`X-Fairlane-Url`), held to the workspace's approved
   * hosts. The answer is returned whatever its status: see `problemError` to tell
   * Fairlane's refusals from the upstream's answers.
   */
  readonly fetch: FairlaneFetch = (input, init) => this.#proxy(this.baseUrl, input, init)

  /** A fetch for one target: relative URLs go under `/t/<target>`. */
  target(target: string): FairlaneFetch {
    const base = this.targetUrl(target)
    return (input, init) => this.#proxy(base, input, init)
  }

  /** Queues `request` (POST /v1/jobs) and returns the accepted job: at least its id. */
  async queueRequest(request: JobRequest, options: QueueOptions = {}): Promise<QueuedJob> {
    const { idempotencyKey, ...rest } = options
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey
    return this.#api<QueuedJob>('POST', '/v1/jobs', {
      headers,
      body: JSON.stringify({ request, ...rest }),
    })
  }

  getJob(id: string): Promise<Job> {
    return this.#api<Job>('GET', `/v1/jobs/${encodeURIComponent(id)}`)
  }

  /** Cancels a job not yet finished (DELETE /v1/jobs/{id}) and returns it, cancelled. */
  cancelJob(id: string): Promise<Job> {
    return this.#api<Job>('DELETE', `/v1/jobs/${encodeURIComponent(id)}`)
  }

  /** Sends a finished job's undelivered webhooks again, now (POST /v1/jobs/{id}/redeliver). */
  redeliverJob(id: string): Promise<Job> {
    return this.#api<Job>('POST', `/v1/jobs/${encodeURIComponent(id)}/redeliver`)
  }

  /** One page of the workspace's jobs, newest first; follow `cursor` for the next. */
  listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const query = new URLSearchParams()
    if (options.state !== undefined) query.set('state', options.state)
    if (options.cursor !== undefined) query.set('cursor', options.cursor)
    if (options.limit !== undefined) query.set('limit', String(options.limit))
    const search = query.size > 0 ? `?${query}` : ''
    return this.#api<JobPage>('GET', `/v1/jobs${search}`)
  }

  /** Reads the job until it is succeeded, failed or cancelled, and returns it. */
  async waitForJob(id: string, options: WaitOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? 60_000
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const job = await this.getJob(id)
      if (FINAL_STATES.has(job.state)) return job
      const left = deadline - Date.now()
      if (left <= 0) throw new WaitTimeoutError(job, timeoutMs)
      await sleep(Math.min(options.pollIntervalMs ?? 500, left), options.signal)
    }
  }

  async #api<T>(method: string, path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${this.#key}`)
    headers.set('accept', 'application/json')
    const response = await this.#send(this.baseUrl + path, { ...init, method, headers })
    const text = await response.text()
    if (!response.ok) throw errorFrom(response.status, response.headers, text)
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  #proxy(base: string, input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const request = input instanceof Request ? input : undefined
    const raw = request ? request.url : String(input)
    const headers = new Headers(request?.headers)
    new Headers(init.headers).forEach((value, name) => headers.set(name, value))
    headers.set('x-fairlane-key', this.#key)
    let url: string
    if (/^[a-z][a-z0-9+.-]*:/i.test(raw)) {
      const absolute = new URL(raw)
      if (raw.startsWith(this.baseUrl + '/')) {
        url = raw
      } else {
        headers.set('x-fairlane-url', absolute.href)
        // The header alone says where it goes: on the URL's own path, one starting with
        // /t/<target> would be routed to that target instead.
        url = this.baseUrl + '/'
      }
    } else {
      url = base + (raw.startsWith('/') ? raw : `/${raw}`)
    }
    const merged: RequestInit = request
      ? { method: request.method, body: request.body, signal: request.signal, ...init, headers }
      : { ...init, headers }
    if (merged.body instanceof ReadableStream) (merged as { duplex?: string }).duplex = 'half'
    return this.#send(url, merged)
  }

  /** One request, sent again after each Retry-After of a retryable refusal, within the options. */
  async #send(url: string, init: RequestInit): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.#fetch(url, init)
      if (attempt >= this.#retries || !replayable(init.body)) return response
      if (response.status !== 429 && response.status !== 503) return response
      const refusal = await problemError(response)
      const waitMs = (refusal?.retryAfter ?? Infinity) * 1000
      if (!refusal?.retryable || waitMs > this.#maxRetryWaitMs) return response
      await response.body?.cancel()
      await sleep(waitMs, init.signal)
    }
  }
}
