/**
 * Seconds to wait from a Retry-After value: delta-seconds, or an HTTP date counted from
 * `nowMs`. Undefined when absent or unreadable; never negative.
 */
export function retryAfterSeconds(value: string | null, nowMs: number): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, Math.ceil((at - nowMs) / 1000))
}
