/**
 * A hierarchical timing wheel (Varghese & Lauck) with 1 ms resolution: scheduling and
 * cancelling are O(1), and finding the next due time scans a bounded number of slots, never
 * the timers. Pure: the caller passes the time in and turns `nextDueAt` into one real timer.
 *
 * Four levels of 64 slots cover 64 ms, 4.1 s, 4.4 min and 4.7 h; a timer further out waits
 * in the last slot of the top level and is re-filed when that slot comes round.
 */

export interface Timer {
  dueAt: number
  timerPrev: Timer | null
  timerNext: Timer | null
  timerSlot: Slot | null
}

interface Slot {
  head: Timer | null
  count: number
}

const BITS = 6
const SLOTS = 1 << BITS
const MASK = SLOTS - 1
const LEVELS = 4

export class TimerWheel {
  readonly #levels: Slot[][]
  /** Every timer due at or before `#now` has been handed out. */
  #now: number
  #count = 0

  constructor(startMs: number) {
    this.#now = Math.floor(startMs)
    this.#levels = Array.from({ length: LEVELS }, () =>
      Array.from({ length: SLOTS }, () => ({ head: null, count: 0 })),
    )
  }

  get size(): number {
    return this.#count
  }

  /** Files `timer` for `dueAt` (ms, rounded up: a timer never fires early). */
  schedule(timer: Timer, dueAt: number): void {
    if (timer.timerSlot) this.cancel(timer)
    timer.dueAt = Math.max(Math.ceil(dueAt), this.#now + 1)
    this.#file(timer, this.#now)
    this.#count++
  }

  cancel(timer: Timer): void {
    const slot = timer.timerSlot
    if (!slot) return
    if (timer.timerPrev) timer.timerPrev.timerNext = timer.timerNext
    else slot.head = timer.timerNext
    if (timer.timerNext) timer.timerNext.timerPrev = timer.timerPrev
    timer.timerPrev = timer.timerNext = null
    timer.timerSlot = null
    slot.count--
    this.#count--
  }

  /** Hands every timer due at or before `now` to `onDue`, in due order by millisecond. */
  advance(now: number, onDue: (timer: Timer) => void): void {
    const target = Math.floor(now)
    if (this.#count === 0) {
      this.#now = Math.max(this.#now, target)
      return
    }
    while (this.#now < target) {
      // Skip ahead over empty level-0 slots, but never past a cascade boundary.
      const next = this.#now + 1
      if ((next & MASK) === 0) this.#cascade(next)
      this.#now = next
      const slot = (this.#levels[0] as Slot[])[next & MASK] as Slot
      while (slot.head) {
        const timer = slot.head
        this.cancel(timer)
        onDue(timer)
      }
      if (this.#count === 0) {
        this.#now = target
        return
      }
    }
  }

  /**
   * The earliest time at which `advance` may have something to hand out. It can be early
   * (a timer still in a coarse slot), never late; the caller wakes, advances and asks again.
   */
  nextDueAt(): number | undefined {
    if (this.#count === 0) return undefined
    let earliest = Infinity
    for (let level = 0; level < LEVELS; level++) {
      const unit = 2 ** (level * BITS)
      const slots = this.#levels[level] as Slot[]
      const cursor = Math.floor(this.#now / unit)
      for (let i = 1; i <= SLOTS; i++) {
        const index = cursor + i
        if ((slots[index & MASK] as Slot).count === 0) continue
        // A level-0 slot holds timers of exactly that millisecond; a coarse slot's timers are
        // due no earlier than the slot's start, where the cascade files them finer.
        earliest = Math.min(earliest, Math.max(this.#now + 1, index * unit))
        break
      }
    }
    return earliest === Infinity ? this.#now + 1 : earliest
  }

  /** Files `timer` by its distance from `base`, the time the wheel stands at. */
  #file(timer: Timer, base: number): void {
    const delta = timer.dueAt - base
    let level = 0
    while (level < LEVELS - 1 && delta >= 2 ** ((level + 1) * BITS)) level++
    const unit = 2 ** (level * BITS)
    // Beyond the top level's reach a timer waits in its last slot and is filed again then.
    const horizon = base + (SLOTS - 1) * unit
    const at = level === LEVELS - 1 ? Math.min(timer.dueAt, horizon) : timer.dueAt
    const slot = (this.#levels[level] as Slot[])[Math.floor(at / unit) & MASK] as Slot
    timer.timerSlot = slot
    timer.timerPrev = null
    timer.timerNext = slot.head
    if (slot.head) slot.head.timerPrev = timer
    slot.head = timer
    slot.count++
  }

  /** When the wheel reaches `at`, a multiple of 64 ms, coarse slots starting there move finer. */
  #cascade(at: number): void {
    for (let level = 1; level < LEVELS; level++) {
      const unit = 2 ** (level * BITS)
      if (at % unit !== 0) return
      const slot = (this.#levels[level] as Slot[])[Math.floor(at / unit) & MASK] as Slot
      let timer = slot.head
      slot.head = null
      slot.count = 0
      while (timer) {
        const next = timer.timerNext
        this.#file(timer, at)
        timer = next
      }
    }
  }
}
