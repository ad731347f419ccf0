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
  /** Links in the slot's ring; both null while the timer is not scheduled. */
  timerPrev: Timer | null
  timerNext: Timer | null
}

/**
 * A slot is the sentinel of a circular list: a timer unlinks itself through its own links,
 * so it needs no pointer to its slot, and a slot is empty when the sentinel links to itself.
 */
function emptySlot(): Timer {
  const slot: Timer = { dueAt: 0, timerPrev: null, timerNext: null }
  slot.timerPrev = slot.timerNext = slot
  return slot
}

const BITS = 6
const SLOTS = 1 << BITS
const MASK = SLOTS - 1
const LEVELS = 4
/** Milliseconds per slot at each level: 1, 64, 4096, 262144 (filing a timer is on every enqueue). */
const UNITS: readonly number[] = Array.from({ length: LEVELS }, (_, level) => 2 ** (level * BITS))

export class TimerWheel {
  readonly #levels: Timer[][]
  /** Every timer due at or before `#now` has been handed out. */
  #now: number
  #count = 0

  constructor(startMs: number) {
    this.#now = Math.floor(startMs)
    this.#levels = Array.from({ length: LEVELS }, () => Array.from({ length: SLOTS }, emptySlot))
  }

  get size(): number {
    return this.#count
  }

  /** Files `timer` for `dueAt` (ms, rounded up: a timer never fires early). */
  schedule(timer: Timer, dueAt: number): void {
    if (timer.timerNext) this.cancel(timer)
    timer.dueAt = Math.max(Math.ceil(dueAt), this.#now + 1)
    this.#file(timer, this.#now)
    this.#count++
  }

  cancel(timer: Timer): void {
    const next = timer.timerNext
    const prev = timer.timerPrev
    if (!next || !prev) return
    prev.timerNext = next
    next.timerPrev = prev
    timer.timerPrev = timer.timerNext = null
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
      const slot = (this.#levels[0] as Timer[])[next & MASK] as Timer
      while (slot.timerNext !== slot) {
        const timer = slot.timerNext as Timer
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
      const unit = UNITS[level] as number
      const slots = this.#levels[level] as Timer[]
      const cursor = Math.floor(this.#now / unit)
      for (let i = 1; i <= SLOTS; i++) {
        const index = cursor + i
        const slot = slots[index & MASK] as Timer
        if (slot.timerNext === slot) continue
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
    while (level < LEVELS - 1 && delta >= (UNITS[level + 1] as number)) level++
    const unit = UNITS[level] as number
    // Beyond the top level's reach a timer waits in its last slot and is filed again then.
    const horizon = base + (SLOTS - 1) * unit
    const at = level === LEVELS - 1 ? Math.min(timer.dueAt, horizon) : timer.dueAt
    const slot = (this.#levels[level] as Timer[])[Math.floor(at / unit) & MASK] as Timer
    const first = slot.timerNext as Timer
    timer.timerPrev = slot
    timer.timerNext = first
    first.timerPrev = timer
    slot.timerNext = timer
  }

  /** When the wheel reaches `at`, a multiple of 64 ms, coarse slots starting there move finer. */
  #cascade(at: number): void {
    for (let level = 1; level < LEVELS; level++) {
      const unit = UNITS[level] as number
      if (at % unit !== 0) return
      const slot = (this.#levels[level] as Timer[])[Math.floor(at / unit) & MASK] as Timer
      let timer = slot.timerNext as Timer
      slot.timerPrev = slot.timerNext = slot
      while (timer !== slot) {
        const next = timer.timerNext as Timer
        this.#file(timer, at)
        timer = next
      }
    }
  }
}
