/** Arranges one call of `flush` later; the function it returns cancels that call. */
export type FlushSchedule = (flush: () => void) => () => void

/**
 * The schedule of a flush delay: 0 flushes at the end of the current turn of the event loop
 * (setImmediate: everything the turn produced, such as the tickets of requests parsed from
 * one read of the sockets, goes together, at no added wait); more waits that many ms (a
 * timer: fuller batches, at that much latency).
 */
export function flushAfter(delayMs: number): FlushSchedule {
  if (delayMs <= 0) {
    return (flush) => {
      const immediate = setImmediate(flush)
      return () => clearImmediate(immediate)
    }
  }
  return (flush) => {
    const timer = setTimeout(flush, delayMs)
    return () => clearTimeout(timer)
  }
}

export interface BatcherOptions<T> {
  /** A destination's items are sent as soon as there are this many. */
  readonly maxItems: number
  /** When the items gathered so far are sent, if they do not reach maxItems first. */
  readonly schedule: FlushSchedule
  /** Sends one batch; called synchronously from add, flush and close. */
  readonly send: (destination: string, items: T[]) => void
}

/**
 * Gathers items per destination (a NATS subject) and sends each destination's items as one
 * batch: when maxItems are there, or when the schedule fires, or on flush and close. Items of
 * one destination are sent in the order they were added.
 */
export class Batcher<T> {
  readonly #maxItems: number
  readonly #schedule: FlushSchedule
  readonly #send: (destination: string, items: T[]) => void
  #pending = new Map<string, T[]>()
  #cancel: (() => void) | undefined
  #closed = false

  constructor(options: BatcherOptions<T>) {
    if (!(options.maxItems >= 1))
      throw new RangeError(`maxItems must be ≥ 1 (got ${options.maxItems})`)
    this.#maxItems = options.maxItems
    this.#schedule = options.schedule
    this.#send = options.send
  }

  add(destination: string, item: T): void {
    if (this.#closed) {
      this.#send(destination, [item])
      return
    }
    let items = this.#pending.get(destination)
    if (!items) {
      items = []
      this.#pending.set(destination, items)
    }
    items.push(item)
    if (items.length >= this.#maxItems) {
      this.#pending.delete(destination)
      this.#send(destination, items)
      return
    }
    this.#cancel ??= this.#schedule(() => {
      this.#cancel = undefined
      this.flush()
    })
  }

  /** Sends every destination's items now. */
  flush(): void {
    this.#cancel?.()
    this.#cancel = undefined
    const pending = this.#pending
    this.#pending = new Map()
    for (const [destination, items] of pending) this.#send(destination, items)
  }

  /** Sends what is gathered; items added afterwards go out at once, one per batch. */
  close(): void {
    this.flush()
    this.#closed = true
  }
}
