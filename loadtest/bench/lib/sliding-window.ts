/** The busiest window of a run: how many events fell in it and where it began. */
export interface BusiestWindow {
  readonly count: number
  /** The time of the window's first event (same clock as the events). */
  readonly startsAt: number
}

/**
 * The most events in any window of `windowMs` (half open: [t, t + windowMs)), over times
 * sorted oldest first. Every busiest window can be slid to start at one of its events, so
 * trying each event as a start finds it; two pointers make that one pass.
 */
export function busiestWindow(sortedTimes: readonly number[], windowMs: number): BusiestWindow {
  let best: BusiestWindow = { count: 0, startsAt: Number.NaN }
  let end = 0
  for (let start = 0; start < sortedTimes.length; start++) {
    const from = sortedTimes[start] as number
    while (end < sortedTimes.length && (sortedTimes[end] as number) < from + windowMs) end++
    if (end - start > best.count) best = { count: end - start, startsAt: from }
  }
  return best
}

/** The longest time between two consecutive events, and when it began; 0 with fewer than two. */
export function longestGap(sortedTimes: readonly number[]): { ms: number; from: number } {
  let gap = { ms: 0, from: Number.NaN }
  for (let i = 1; i < sortedTimes.length; i++) {
    const ms = (sortedTimes[i] as number) - (sortedTimes[i - 1] as number)
    if (ms > gap.ms) gap = { ms, from: sortedTimes[i - 1] as number }
  }
  return gap
}
