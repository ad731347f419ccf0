import type { OutgoingHttpHeaders } from 'node:http'

/** What a held answer is written to: a ServerResponse. */
export interface AnswerTarget {
  readonly destroyed: boolean
  readonly headersSent: boolean
  /** A socket destroyed this turn shows here before the response learns of it (its close phase). */
  readonly socket: { readonly destroyed: boolean } | null
  writeHead(status: number, headers: OutgoingHttpHeaders): unknown
  end(body: Buffer | string): unknown
  destroy(): unknown
}

interface HeldAnswer<C> {
  readonly res: AnswerTarget
  readonly status: number
  readonly headers: OutgoingHttpHeaders
  readonly body: Buffer | string
  readonly context: C
}

/**
 * Whole answers (head and body known) written together at the end of the event-loop turn,
 * in setImmediate's phase after the turn's I/O callbacks, instead of each as soon as it is
 * ready. Under load a turn readies many answers, and each write wakes the client's side of
 * the connection: written back to back, the first write finds a reader asleep and the rest
 * find it awake, where written between other requests' work each finds it asleep again.
 * That wake-up is charged to the writer, and cost about a sixth of Fairlane's CPU per
 * request (docs/performance.md). A quiet turn holds one answer for no measurable time.
 */
export class TurnEndAnswers<C> {
  #held: HeldAnswer<C>[] = []
  readonly #failed: (context: C, err: unknown) => void
  readonly #schedule: (flush: () => void) => void

  /**
   * `failed` is told when writing an answer threw (a header Node refuses): the response is
   * still unanswered and `failed` may answer it another way. `schedule` runs the turn's
   * writes: setImmediate unless a test says otherwise.
   */
  constructor(
    failed: (context: C, err: unknown) => void,
    schedule: (flush: () => void) => void = setImmediate,
  ) {
    this.#failed = failed
    this.#schedule = schedule
  }

  /** Writes `status`, `headers` and `body` to `res` at the end of this turn. */
  end(
    res: AnswerTarget,
    status: number,
    headers: OutgoingHttpHeaders,
    body: Buffer | string,
    context: C,
  ): void {
    this.#held.push({ res, status, headers, body, context })
    if (this.#held.length === 1) this.#schedule(this.#flush)
  }

  readonly #flush = (): void => {
    const held = this.#held
    // Answers held while these are written (a failure's problem answer) wait for the next turn.
    this.#held = []
    for (const answer of held) this.#write(answer)
  }

  #write({ res, status, headers, body, context }: HeldAnswer<C>): void {
    // A client that left, or a response answered meanwhile, takes nothing more.
    if (res.destroyed || res.socket?.destroyed === true || res.headersSent) return
    try {
      res.writeHead(status, headers)
      res.end(body)
    } catch (err) {
      try {
        this.#failed(context, err)
      } catch {
        // Thrown here it would end the process; one response is cut instead.
        res.destroy()
      }
    }
  }
}
