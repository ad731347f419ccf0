/**
 * Retries and hedges allowed per target on one node: a fraction of the requests of the last
 * ten seconds, plus a few per second whatever the traffic. When every endpoint fails, retries
 * stop at that fraction instead of multiplying the load (no retry storm). Pure: clock injected.
 */
export class RetryBudget {
  readonly #now: () => number
  readonly #ratio: number
  readonly #perSecond: number
  /** Requests and retries per second, for the last ten seconds (ring by second). */
  readonly #requests = new Float64Array(10)
  readonly #retries = new Float64Array(10)
  #second = 0

  constructor(options: { now: () => number; ratio: number; perSecond: number }) {
    this.#now = options.now
    this.#ratio = options.ratio
    this.#perSecond = options.perSecond
    this.#second = Math.floor(this.#now() / 1000)
  }

  /** A first attempt went out. */
  request(): void {
    this.#requests[this.#slot()]! += 1
  }

  /** Takes one retry or hedge from the budget; false when it is spent. */
  tryRetry(): boolean {
    const slot = this.#slot()
    let requests = 0
    let retries = 0
    for (let i = 0; i < 10; i++) {
      requests += this.#requests[i] as number
      retries += this.#retries[i] as number
    }
    if (retries + 1 > requests * this.#ratio + this.#perSecond * 10) return false
    this.#retries[slot]! += 1
    return true
  }

  #slot(): number {
    const second = Math.floor(this.#now() / 1000)
    // Seconds that passed without traffic are emptied before they are reused.
    for (let s = Math.max(this.#second + 1, second - 9); s <= second; s++) {
      this.#requests[s % 10] = 0
      this.#retries[s % 10] = 0
    }
    if (second > this.#second) this.#second = second
    return second % 10
  }
}
