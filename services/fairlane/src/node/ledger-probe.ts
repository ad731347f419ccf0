export interface LedgerProbeOptions {
  /** One round trip to the ledger's Redis (PING). */
  readonly ping: () => Promise<unknown>
  readonly everyMs: number
  /** A ping unanswered this long counts as down: a frozen Redis keeps its socket open. */
  readonly timeoutMs: number
  /** The ledger went down (with why) or came back. */
  readonly onChange: (up: boolean, why?: string) => void
  /** Milliseconds of a monotonic clock (performance.now in production). */
  readonly now: () => number
}

/**
 * Whether the ledger's Redis answers, asked on a timer rather than learned from traffic: a
 * node with no shared limit sends the ledger nothing, and a frozen Redis fails no command,
 * it only never answers.
 */
export class LedgerProbe {
  readonly #options: LedgerProbeOptions
  readonly #timer: NodeJS.Timeout
  #up = true
  #downSince = 0
  #asking = false

  constructor(options: LedgerProbeOptions) {
    this.#options = options
    this.#timer = setInterval(() => void this.check(), options.everyMs)
    this.#timer.unref()
  }

  get up(): boolean {
    return this.#up
  }

  /** How long the ledger has been found down (0 while it answers). */
  get downForMs(): number {
    return this.#up ? 0 : this.#options.now() - this.#downSince
  }

  /** One probe; overlapping probes are skipped (the pending one times out first). */
  async check(): Promise<void> {
    if (this.#asking) return
    this.#asking = true
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.#options.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#options.timeoutMs} ms`)),
            this.#options.timeoutMs,
          )
        }),
      ])
      this.#set(true)
    } catch (err) {
      this.#set(false, err instanceof Error ? err.message : String(err))
    } finally {
      clearTimeout(timer)
      this.#asking = false
    }
  }

  close(): void {
    clearInterval(this.#timer)
  }

  #set(up: boolean, why?: string): void {
    if (up === this.#up) return
    this.#up = up
    if (!up) this.#downSince = this.#options.now()
    this.#options.onChange(up, why)
  }
}
