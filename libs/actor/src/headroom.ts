const NONE: readonly string[] = []

/**
 * Lanes with nothing in flight keep their entry (at 0) until more than this many do. A count
 * deleted at 0 made the Map drop and grow again a table for every request of a quiet lane:
 * garbage on every request, which the young generation then promoted.
 */
export const IDLE_LANES_KEPT = 1024

/**
 * A partition's requests in flight, in all and per lane, and the slots of its capacity kept
 * for lanes with nothing in flight: a lane that already has a request in flight may not take
 * the last `headroom` slots.
 */
export class Headroom {
  readonly #capacity: number | undefined
  readonly #headroom: number | undefined
  #inFlight = 0
  readonly #byLane = new Map<string, number>()
  /** Entries of #byLane at 0. */
  #idle = 0
  /** Lanes held back: any release in the partition may let them go. */
  readonly #heldBack = new Set<string>()

  constructor(capacity: number | undefined, headroom: number | undefined) {
    this.#capacity = capacity
    this.#headroom = headroom
  }

  /** The lane must wait for a release; it is remembered so that the next release wakes it. */
  holdsBack(lane: string): boolean {
    const capacity = this.#capacity
    const headroom = this.#headroom
    if (!capacity || !headroom) return false
    if ((this.#byLane.get(lane) ?? 0) === 0) return false
    if (this.#inFlight < capacity - headroom) return false
    this.#heldBack.add(lane)
    return true
  }

  /** Lanes it keeps a count for: those with requests in flight, and at most IDLE_LANES_KEPT others. */
  get lanesKept(): number {
    return this.#byLane.size
  }

  took(lane: string): void {
    this.#inFlight++
    const held = this.#byLane.get(lane)
    if (held === 0) this.#idle--
    this.#byLane.set(lane, (held ?? 0) + 1)
  }

  /** Gives the lane's slot back; answers the lanes held back meanwhile, free to try again. */
  gaveBack(lane: string): readonly string[] {
    this.#inFlight--
    const before = this.#byLane.get(lane)
    const left = Math.max(0, (before ?? 1) - 1)
    this.#byLane.set(lane, left)
    if (left === 0 && before !== 0 && ++this.#idle > IDLE_LANES_KEPT) this.#forgetIdle()
    if (this.#heldBack.size === 0) return NONE
    const held = [...this.#heldBack]
    this.#heldBack.clear()
    return held
  }

  #forgetIdle(): void {
    for (const [lane, count] of this.#byLane) if (count === 0) this.#byLane.delete(lane)
    this.#idle = 0
  }
}
