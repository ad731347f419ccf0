import { Agent, get } from 'node:http'
import type { LoadRequest } from './measurement.ts'

/** How one request ended: its HTTP status, a transport error, or no answer by its deadline. */
type Outcome = number | 'error' | 'hung'

/** One request of a logged open loop. */
export interface LoggedRequest {
  /** Index of the target it was sent to, in the order given. */
  readonly target: number
  /** performance.now() of the bench when it was sent, and when it ended. */
  readonly sentAt: number
  readonly endedAt: number
  readonly outcome: Outcome
  /** The error's code (ECONNRESET, …) when the outcome is `error`. */
  readonly error?: string
  /** The problem's `code` of a 5xx answer (`queue_timeout`, `cluster_unavailable`, …). */
  readonly code?: string
}

/** The `code` of a problem+json body, or undefined. */
function problemCode(body: string): string | undefined {
  try {
    const { code } = JSON.parse(body) as { code?: unknown }
    return typeof code === 'string' ? code : undefined
  } catch {
    return undefined
  }
}

/**
 * An open loop at a fixed rate, round robin over the targets, that keeps every request's
 * outcome and timing: for runs where one request lost or hung matters, not only percentiles
 * (the handover scenario). A request still unanswered `deadlineMs` after it was sent is
 * abandoned and logged `hung`. No socket limit: thousands may wait at once while a shard
 * changes owner, and a capped pool would delay their sending, not their answers.
 */
export class LoggedOpenLoop {
  readonly #targets: readonly LoadRequest[]
  readonly #deadlineMs: number
  readonly #agent = new Agent({ keepAlive: true })
  readonly #log: LoggedRequest[] = []
  readonly #inFlight = new Set<Promise<void>>()
  readonly #timer: NodeJS.Timeout
  readonly #started = performance.now()
  #sent = 0
  #stoppedAt: number | undefined

  constructor(targets: readonly LoadRequest[], ratePerSec: number, deadlineMs: number) {
    this.#targets = targets
    this.#deadlineMs = deadlineMs
    // Timers fire at most once a millisecond: each tick sends every request due by then.
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.#started) / 1000) * ratePerSec)
      while (this.#sent < due) this.#send(this.#sent++ % targets.length)
    }, 1)
  }

  #send(index: number): void {
    const target = this.#targets[index] as LoadRequest
    const sentAt = performance.now()
    const done = new Promise<void>((settle) => {
      let ended = false
      const end = (outcome: Outcome, err?: NodeJS.ErrnoException, code?: string): void => {
        if (ended) return
        ended = true
        clearTimeout(deadline)
        this.#log.push({
          target: index,
          sentAt,
          endedAt: performance.now(),
          outcome,
          ...(err ? { error: err.code ?? err.message } : {}),
          ...(code === undefined ? {} : { code }),
        })
        settle()
      }
      const request = get(
        target.url,
        { agent: this.#agent, headers: target.headers },
        (response) => {
          const status = response.statusCode ?? 0
          // Only a 5xx body is read: which refusal it was. Others are drained unread.
          let body = ''
          if (status >= 500) {
            response.setEncoding('utf8')
            response.on('data', (chunk: string) => (body += chunk))
          } else {
            response.resume()
          }
          response.once('end', () =>
            end(status, undefined, status >= 500 ? problemCode(body) : undefined),
          )
          response.once('error', (err) => end('error', err))
        },
      )
      request.once('error', (err) => end('error', err))
      // After a stall of the bench's own event loop, expired timers run before the I/O that
      // arrived meanwhile: the verdict waits one turn so an answer already here is read first.
      const deadline = setTimeout(
        () =>
          setImmediate(() => {
            if (ended) return
            end('hung')
            request.destroy()
          }),
        this.#deadlineMs,
      )
    })
    this.#inFlight.add(done)
    void done.finally(() => this.#inFlight.delete(done))
  }

  /** Requests per second actually sent, from the start to stop() (the sender may fall short). */
  get sentPerSec(): number {
    return (this.#sent * 1000) / ((this.#stoppedAt ?? performance.now()) - this.#started)
  }

  /** Stops sending; resolves with every request's log once each has ended or hit its deadline. */
  async stop(): Promise<readonly LoggedRequest[]> {
    clearInterval(this.#timer)
    this.#stoppedAt = performance.now()
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight])
    this.#agent.destroy()
    return [...this.#log].sort((a, b) => a.sentAt - b.sentAt)
  }
}
