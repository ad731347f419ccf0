/**
 * The middle one of `items` ordered by `value`, the upper middle of an even count: the run a
 * bench reports of its repeats. There is always at least one repeat; none is a caller's bug.
 */
export function medianBy<T>(items: readonly T[], value: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => value(a) - value(b))
  const middle = sorted[Math.floor(sorted.length / 2)]
  if (middle === undefined) throw new Error('medianBy: no items')
  return middle
}
