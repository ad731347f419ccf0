import { readMembers, type BareItem, type Member } from './structured-fields.ts'

/**
 * Parser for what an upstream says about its own limits: `Retry-After`, the IETF httpapi
 * draft fields (`RateLimit-Policy` + `RateLimit` of the current drafts, the `limit=, remaining=,
 * reset=` dictionary of draft 07, the separate `RateLimit-Limit/-Remaining/-Reset` of the
 * early drafts), the legacy `X-RateLimit-*` family and the provider signals `X-Fairlane-RPS`
 * and `X-Fairlane-Max-Concurrent` (also read as `X-EZTHROTTLE-RPS`, `X-EZTHROTTLE-MAX-CONCURRENT`). The counterpart of `rate-limit-headers.ts`, which emits.
 *
 * Pure: the caller passes the clock. An upstream is not trusted to be well-formed: nothing
 * here throws, a value that does not parse is ignored, and every time it yields lies in
 * [nowMs, nowMs + UPSTREAM_SIGNAL_HORIZON_MS].
 */

export interface UpstreamSignals {
  /**
   * Epoch ms before which the upstream asked not to be called again: `Retry-After`
   * (delta-seconds or HTTP-date), or the reset of a limit with nothing remaining (RateLimit
   * draft fields, `X-RateLimit-*`). When several say so, the latest: the upstream asked for all.
   */
  readonly retryAt?: number
  /**
   * The request rate the upstream states it allows, in requests per second: the tightest of
   * `RateLimit-Policy` items (q over w, request units only), a `RateLimit-Limit` /
   * `X-RateLimit-Limit` over its window when a window is stated (`;w=`, `X-RateLimit-Window`,
   * or a policy item with the same quota), and the provider signal `X-Fairlane-RPS`.
   */
  readonly rps?: number
  /**
   * How many requests the upstream wants in flight at once: `X-Fairlane-Max-Concurrent`, or a
   * `RateLimit-Policy` item whose quota unit is `concurrent-requests`; the smaller.
   */
  readonly maxConcurrent?: number
  /**
   * Units left in the tightest stated limit (fewest remaining; among equals the one that
   * resets last, as `tightest` in rate-limit-headers.ts chooses), and when it resets (epoch
   * ms; absent when that limit states no reset).
   */
  readonly remaining?: number
  readonly resetAt?: number
}

/**
 * How far ahead any time taken from an upstream may lie. A longer wait is more likely a bug
 * or a unit mix-up (ms sent as seconds) than a wish, and a lane parked for days on one
 * header would not recover by itself.
 */
export const UPSTREAM_SIGNAL_HORIZON_MS = 24 * 60 * 60 * 1000

/** How many members of one field are read; a real upstream states a handful of limits. */
const MAX_MEMBERS = 64

/** A plain non-negative decimal (`30`, `1.5`): no sign, exponent or unit. */
const NUMBER = /^\d+(?:\.\d+)?$/

export type UpstreamHeaders = Readonly<Record<string, string | string[] | undefined>>

/**
 * `Retry-After` as epoch ms: delta-seconds (a non-negative decimal is rounded up to whole
 * seconds, so a caller that waits that long is never early) or an HTTP-date (IMF-fixdate,
 * RFC 850, asctime; always GMT). A date in the past gives `nowMs`, a time beyond the horizon
 * is clamped to it, anything else (negative, garbage, absent) gives undefined.
 */
export function parseRetryAt(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  let at: number | undefined
  if (NUMBER.test(trimmed)) {
    at = nowMs + Math.ceil(Number(trimmed)) * 1000
  } else {
    at = parseHttpDate(trimmed, nowMs)
    // Joined duplicates ("30, 30", as fetch's Headers combine them): the latest counts.
    if (at === undefined && trimmed.includes(',')) {
      const parts = trimmed.split(',').map((part) => part.trim())
      if (parts.every((part) => NUMBER.test(part))) {
        at = nowMs + Math.max(...parts.map((part) => Math.ceil(Number(part)))) * 1000
      }
    }
  }
  // A delta too long for a double is still a request to wait: the horizon bounds it.
  return at === undefined || Number.isNaN(at) ? undefined : clampAhead(at, nowMs)
}

/** Whether any header could say something about limits; most answers say nothing. */
function mentionsLimits(headers: UpstreamHeaders): boolean {
  for (const name in headers) {
    const first = name.charCodeAt(0) | 0x20
    // Every field read here starts with r (RateLimit*, Retry-After) or x (X-RateLimit-*,
    // X-Fairlane-*, X-EZTHROTTLE-*).
    if (first !== 0x72 && first !== 0x78) continue
    const lower = name.toLowerCase()
    if (
      lower === 'retry-after' ||
      lower.startsWith('ratelimit') ||
      lower.startsWith('x-ratelimit') ||
      lower.startsWith('x-fairlane-') ||
      lower.startsWith('x-ezthrottle-')
    )
      return true
  }
  return false
}

const NOTHING: UpstreamSignals = Object.freeze({})

/** Everything `headers` (a response's, names in any case, repeats as arrays) says about limits. */
export function upstreamSignals(headers: UpstreamHeaders, nowMs: number): UpstreamSignals {
  if (!mentionsLimits(headers)) return NOTHING
  const fields = new Map<string, string[]>()
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const key = name.toLowerCase()
    const values = fields.get(key) ?? []
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v === 'string') values.push(v)
    }
    fields.set(key, values)
  }
  const list = (name: string): string | undefined => {
    const values = fields.get(name)
    // RFC 9110 §5.3: repeated field lines of a list combine with commas.
    return values && values.length > 0 ? values.join(', ') : undefined
  }

  const states: LimitState[] = []
  const rates: number[] = []
  const concurrency: number[] = []
  const retryAts: number[] = []

  // Current drafts: RateLimit-Policy states the shapes, RateLimit the live counters. A
  // draft 07 policy is a bare integer quota (`10;w=1`) instead of a named item with q.
  const policyWindows = new Map<number, number>()
  for (const policy of membersOf(list('ratelimit-policy'))) {
    if (policy.key !== undefined) continue
    const quota = sfNumber(policy.params.get('q') ?? policy.value)
    if (quota === undefined) continue
    const unit = policy.params.get('qu')
    if (unit === 'concurrent-requests') {
      if (Number.isSafeInteger(quota) && quota > 0) concurrency.push(quota)
      continue
    }
    // A quota of bytes states no request rate.
    if (unit !== undefined && unit !== 'requests') continue
    const windowS = sfNumber(policy.params.get('w'))
    if (windowS === undefined || windowS <= 0) continue
    rates.push(quota / windowS)
    if (!policyWindows.has(quota)) policyWindows.set(quota, windowS)
  }

  let draft07: LimitState | undefined
  for (const member of membersOf(list('ratelimit'))) {
    if (member.key === undefined) {
      states.push({
        remaining: sfNumber(member.params.get('r')),
        resetMs: secondsToMs(sfNumber(member.params.get('t'))),
      })
    } else if (member.key === 'remaining') {
      draft07 = { ...draft07, remaining: sfNumber(member.value) }
    } else if (member.key === 'reset') {
      draft07 = { ...draft07, resetMs: secondsToMs(sfNumber(member.value)) }
    }
    // Draft 07's `limit=` has no window of its own; its RateLimit-Policy gives the rate.
  }
  if (draft07) states.push(draft07)

  // Early drafts: RateLimit-Limit (`10, 10;w=1, 50;w=60`), -Remaining, -Reset (delta seconds).
  rates.push(...limitRates(list('ratelimit-limit'), undefined, policyWindows))
  states.push({
    remaining: minOf(list('ratelimit-remaining'), textNumber),
    resetMs: maxOf(list('ratelimit-reset'), (s) => secondsToMs(textNumber(s))),
  })

  // Legacy X-RateLimit-*, one limit per suffix: none (GitHub, Discord, most APIs), or
  // `-requests` / `-tokens` (OpenAI) and the like.
  const legacy = new Map<string, Partial<Record<LegacyPart, string>>>()
  for (const name of fields.keys()) {
    const match = LEGACY_FIELD.exec(name)
    const value = list(name)
    if (!match || value === undefined) continue
    const suffix = match[2] ?? ''
    legacy.set(suffix, { ...legacy.get(suffix), [match[1] as LegacyPart]: value })
  }
  for (const parts of legacy.values()) {
    const windowMs = maxOf(parts.window, durationOrSecondsMs)
    const windowS = windowMs === undefined ? undefined : windowMs / 1000
    rates.push(...limitRates(parts.limit, windowS, policyWindows))
    // A delta needs no agreement between clocks, so Reset-After wins over an absolute Reset.
    const resetMs =
      maxOf(parts['reset-after'], durationOrSecondsMs) ??
      maxOf(parts.reset, (s) => legacyResetMs(s, nowMs))
    states.push({ remaining: minOf(parts.remaining, textNumber), resetMs })
  }

  // X-EZTHROTTLE-* are the same signals under the names another throttling service reads, so
  // APIs that already send them need no change; both names sent: the smaller counts.
  const rps = minOf(joined(list('x-fairlane-rps'), list('x-ezthrottle-rps')), textNumber)
  if (rps !== undefined) rates.push(rps)
  const maxConcurrent = minOf(
    joined(list('x-fairlane-max-concurrent'), list('x-ezthrottle-max-concurrent')),
    textNumber,
  )
  if (maxConcurrent !== undefined && Number.isSafeInteger(maxConcurrent) && maxConcurrent > 0) {
    concurrency.push(maxConcurrent)
  }

  // Not joined like the others: an HTTP-date holds a comma.
  for (const value of fields.get('retry-after') ?? []) {
    const at = parseRetryAt(value, nowMs)
    if (at !== undefined) retryAts.push(at)
  }

  let tight: { remaining: number; resetMs: number | undefined } | undefined
  for (const state of states) {
    if (state.remaining === undefined) continue
    const remaining = state.remaining
    const resetMs =
      state.resetMs === undefined ? undefined : Math.min(state.resetMs, UPSTREAM_SIGNAL_HORIZON_MS)
    // Less than one whole unit left: nothing more goes through before the reset.
    if (remaining < 1 && resetMs !== undefined) retryAts.push(nowMs + resetMs)
    if (
      !tight ||
      remaining < tight.remaining ||
      (remaining === tight.remaining && (resetMs ?? -1) > (tight.resetMs ?? -1))
    ) {
      tight = { remaining, resetMs }
    }
  }

  const finiteRates = rates.filter((r) => Number.isFinite(r) && r > 0)
  return {
    ...(retryAts.length > 0 && { retryAt: clampAhead(Math.max(...retryAts), nowMs) }),
    ...(finiteRates.length > 0 && { rps: Math.min(...finiteRates) }),
    ...(concurrency.length > 0 && { maxConcurrent: Math.min(...concurrency) }),
    ...(tight && { remaining: tight.remaining }),
    ...(tight?.resetMs !== undefined && { resetAt: nowMs + tight.resetMs }),
  }
}

interface LimitState {
  remaining?: number | undefined
  /** Delta from now. */
  resetMs?: number | undefined
}

type LegacyPart = 'limit' | 'remaining' | 'reset' | 'reset-after' | 'window'
const LEGACY_FIELD = /^x-ratelimit-(limit|remaining|reset-after|reset|window)(?:-(.+))?$/

function clampAhead(at: number, nowMs: number): number {
  return Math.min(Math.max(at, nowMs), nowMs + UPSTREAM_SIGNAL_HORIZON_MS)
}

function textNumber(text: string): number | undefined {
  const trimmed = text.trim()
  if (!NUMBER.test(trimmed)) return undefined
  const n = Number(trimmed)
  return Number.isFinite(n) ? n : undefined
}

/** A non-negative SF Integer or Decimal; a string that looks like one is a name, not a number. */
function sfNumber(value: BareItem | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

/** The members of a List or Dictionary field that parse; one bad member hides no other. */
function membersOf(text: string | undefined): Member[] {
  if (text === undefined) return []
  return readMembers(text, MAX_MEMBERS).filter((member) => member !== undefined)
}

function secondsToMs(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000
}

function durationOrSecondsMs(text: string): number | undefined {
  return durationMs(text) ?? secondsToMs(textNumber(text))
}

/** The smallest of the comma-separated values that parse (repeats joined by `list`). */
/** Two optional comma-separated lists as one. */
function joined(a: string | undefined, b: string | undefined): string | undefined {
  return a === undefined ? b : b === undefined ? a : `${a}, ${b}`
}

function minOf(
  text: string | undefined,
  parse: (part: string) => number | undefined,
): number | undefined {
  const values = parsedValues(text, parse)
  return values.length > 0 ? Math.min(...values) : undefined
}

/** The largest of the comma-separated values that parse. */
function maxOf(
  text: string | undefined,
  parse: (part: string) => number | undefined,
): number | undefined {
  const values = parsedValues(text, parse)
  return values.length > 0 ? Math.max(...values) : undefined
}

function parsedValues(
  text: string | undefined,
  parse: (part: string) => number | undefined,
): number[] {
  if (text === undefined) return []
  const values: number[] = []
  for (const part of text.split(',').slice(0, MAX_MEMBERS)) {
    const n = parse(part)
    if (n !== undefined && Number.isFinite(n)) values.push(n)
  }
  return values
}

/**
 * Rates from a `RateLimit-Limit`-style value: items whose quota has a window, from `;w=`,
 * else `windowS` (`X-RateLimit-Window`), else a `RateLimit-Policy` item with the same quota.
 * A quota with no known window states no rate: a GitHub 5000 is per hour, an OpenAI 500 per
 * minute, and guessing would be worse than saying nothing.
 */
function limitRates(
  text: string | undefined,
  windowS: number | undefined,
  policyWindows: ReadonlyMap<number, number>,
): number[] {
  const rates: number[] = []
  for (const member of membersOf(text)) {
    if (member.key !== undefined) continue
    const quota = sfNumber(member.value)
    if (quota === undefined) continue
    const w = sfNumber(member.params.get('w')) ?? windowS ?? policyWindows.get(quota)
    if (w !== undefined && w > 0) rates.push(quota / w)
  }
  return rates
}

/**
 * `X-RateLimit-Reset` as a delta in ms. Servers disagree on the unit, so the magnitude
 * decides: from 1e12 it is epoch ms, from 1e9 epoch seconds (GitHub; Discord with a
 * fraction), below that delta seconds; a Go duration (`6m0s`, OpenAI) is a delta too.
 */
function legacyResetMs(text: string, nowMs: number): number | undefined {
  const duration = durationMs(text)
  if (duration !== undefined) return duration
  const n = textNumber(text)
  if (n === undefined) return undefined
  if (n >= 1e12) return Math.max(0, n - nowMs)
  if (n >= 1e9) return Math.max(0, n * 1000 - nowMs)
  return n * 1000
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000001,
}
const DURATION = /^(?:\d+(?:\.\d+)?(?:h|ms|m|s|us|µs|ns))+$/
const DURATION_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g

/** A Go-style duration (`1s`, `6m0s`, `250ms`, `1h2m3.5s`) in ms; a bare number is not one. */
function durationMs(text: string): number | undefined {
  const trimmed = text.trim()
  if (!DURATION.test(trimmed)) return undefined
  let ms = 0
  for (const [, amount, unit] of trimmed.matchAll(DURATION_PART)) {
    ms += Number(amount) * DURATION_UNIT_MS[unit!]!
  }
  return Number.isFinite(ms) ? ms : undefined
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']
const IMF_FIXDATE = /^[a-z]{3}, (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/i
const RFC850_DATE = /^[a-z]{6,9}, (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/i
const ASCTIME_DATE = /^[a-z]{3} ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i

/**
 * The three HTTP-date forms of RFC 9110 §5.6.7, as epoch ms. Matched by hand rather than by
 * `Date.parse`, which reads asctime (no zone) as local time and accepts strings such as "1".
 */
function parseHttpDate(text: string, nowMs: number): number | undefined {
  const parts = httpDateParts(text, nowMs)
  if (!parts) return undefined
  const { year, month, day, hour, minute, second } = parts
  const monthIndex = MONTHS.indexOf(month.toLowerCase())
  if (monthIndex < 0) return undefined
  const at = Date.UTC(year, monthIndex, day, hour, minute, second)
  const check = new Date(at)
  // Date.UTC rolls 31 Feb over into March; a date that does not exist is not obeyed.
  if (
    Number.isNaN(at) ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    return undefined
  }
  return at
}

interface HttpDateParts {
  year: number
  month: string
  day: number
  hour: number
  minute: number
  second: number
}

function httpDateParts(text: string, nowMs: number): HttpDateParts | undefined {
  const imf = IMF_FIXDATE.exec(text)
  if (imf) return dateParts(imf[3], imf[2], imf[1], imf[4], imf[5], imf[6])
  const rfc850 = RFC850_DATE.exec(text)
  if (rfc850) {
    // RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the future
    // is the most recent past year with those digits.
    const nowYear = new Date(nowMs).getUTCFullYear()
    let year = Math.floor(nowYear / 100) * 100 + Number(rfc850[3])
    if (year > nowYear + 50) year -= 100
    return dateParts(String(year), rfc850[2], rfc850[1], rfc850[4], rfc850[5], rfc850[6])
  }
  const asctime = ASCTIME_DATE.exec(text)
  if (asctime) {
    return dateParts(asctime[6], asctime[1], asctime[2], asctime[3], asctime[4], asctime[5])
  }
  return undefined
}

function dateParts(...fields: (string | undefined)[]): HttpDateParts | undefined {
  const [year, month, day, hour, minute, second] = fields
  if (
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined
  ) {
    return undefined
  }
  return {
    year: Number(year),
    month,
    day: Number(day.trim()),
    hour: Number(hour),
    minute: Number(minute),
    second: Number(second),
  }
}
