/** Segment ids one key may hold at once; the workspace's bound is shared by all its keys. */
export const MAX_SEGMENTS_PER_KEY = 8

export interface SegmentBounds {
  readonly perWorkspace: number
  readonly perKey: number
}

/** One segment id a request names, with the window of its policy. */
export interface SegmentUse {
  readonly segment: string
  readonly windowMs: number
}

/** Segment id → time until which it counts against a bound. */
type Held = Map<string, number>

function live(held: Held, now: number): number {
  for (const [segment, until] of held) if (until <= now) held.delete(segment)
  return held.size
}

function hold(held: Held, use: SegmentUse, now: number): void {
  held.set(use.segment, Math.max(held.get(use.segment) ?? 0, now + use.windowMs))
}

/**
 * The segment ids (`s=` of Fairlane-RateLimit-Policy) in use, bounded per workspace and per
 * key, so one key cannot take every id of its workspace. An id counts until its window has
 * passed since it was last named: by then its sliding window is empty, the ledger forgets
 * the scope (memory sweep, Redis expiry), and freeing the id loosens no limit.
 */
export class SegmentRegistry {
  readonly #bounds: SegmentBounds
  readonly #now: () => number
  readonly #byWorkspace = new Map<string, Held>()
  /** Keyed by workspace, then key id: key ids are unique only within a workspace. */
  readonly #byKey = new Map<string, Map<string, Held>>()

  constructor(bounds: SegmentBounds, now: () => number) {
    this.#bounds = bounds
    this.#now = now
  }

  /**
   * Records the segment ids of one request, all or none: the reason it is refused when a
   * new id would exceed the key's or the workspace's bound.
   */
  admit(workspace: string, keyId: string, uses: readonly SegmentUse[]): string | undefined {
    if (uses.length === 0) return undefined
    const now = this.#now()
    const ofWorkspace = this.#held(this.#byWorkspace, workspace)
    const ofKey = this.#held(this.#keysOf(workspace), keyId)
    const named = new Set(uses.map((u) => u.segment))
    const over = (held: Held, bound: number) => {
      const count = live(held, now)
      const fresh = [...named].filter((segment) => !held.has(segment)).length
      return fresh > 0 && count + fresh > bound
    }
    if (over(ofKey, this.#bounds.perKey)) {
      return `this key already uses ${this.#bounds.perKey} segment ids`
    }
    if (over(ofWorkspace, this.#bounds.perWorkspace)) {
      return `this workspace already uses ${this.#bounds.perWorkspace} segment ids`
    }
    for (const use of uses) {
      hold(ofKey, use, now)
      hold(ofWorkspace, use, now)
    }
    return undefined
  }

  #keysOf(workspace: string): Map<string, Held> {
    let keys = this.#byKey.get(workspace)
    if (!keys) {
      keys = new Map()
      this.#byKey.set(workspace, keys)
    }
    return keys
  }

  #held<K>(map: Map<K, Held>, owner: K): Held {
    let held = map.get(owner)
    if (!held) {
      held = new Map()
      map.set(owner, held)
    }
    return held
  }
}
