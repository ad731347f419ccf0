const NONE: readonly string[] = []

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

  took(lane: string): void {
    this.#inFlight++
    this.#byLane.set(lane, (this.#byLane.get(lane) ?? 0) + 1)
  }

  /** Gives the lane's slot back; answers the lanes held back meanwhile, free to try again. */
  gaveBack(lane: string): readonly string[] {
    this.#inFlight--
    const left = (this.#byLane.get(lane) ?? 1) - 1
    if (left === 0) this.#byLane.delete(lane)
    else this.#byLane.set(lane, left)
    if (this.#heldBack.size === 0) return NONE
    const held = [...this.#heldBack]
    this.#heldBack.clear()
    return held
  }
}
