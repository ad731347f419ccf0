/* global __ENV */
// Settings come from the environment (`k6 run -e NAME=value`), so one script serves any install.
// A bad value stops the test in the init stage with the variable's name, before any request.

/** The variable's value, or the fallback when it is unset or empty. */
export function env(name, fallback) {
  const value = __ENV[name]
  return value === undefined || value === '' ? fallback : value
}

/** A variable that must be set: k6 stops in the init stage and says which one. */
export function required(name, what) {
  const value = env(name, undefined)
  if (value === undefined) throw new Error(`${name} is not set: ${what}`)
  return value
}

export function number(name, fallback) {
  const value = env(name, undefined)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`${name}: must be a number >= 0 (got "${value}")`)
  return n
}

/** A comma-separated list, blanks removed. */
export function list(name, fallback) {
  const value = env(name, undefined)
  if (value === undefined) return fallback
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

/**
 * The tenant's credential as the system reads it: `Authorization: Bearer <key>` for Fairlane
 * (AUTH_HEADER=X-Fairlane-Key AUTH_PREFIX= for the other form); a peer that keys its limit by
 * a header reads the same one.
 */
export function authHeaders(key) {
  if (!key) return {}
  const header = env('AUTH_HEADER', 'Authorization')
  const prefix = __ENV['AUTH_PREFIX'] === undefined ? 'Bearer ' : __ENV['AUTH_PREFIX']
  return { [header]: `${prefix}${key}` }
}

/** Base URL and path joined with exactly one slash. */
export function join(base, path) {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}

/** Seconds as k6 writes a duration. */
export const seconds = (n) => `${n}s`

/** Jain's fairness index: 1 when all shares are equal, 1/n when one got everything. */
export function jainIndex(values) {
  const sum = values.reduce((a, b) => a + b, 0)
  const squares = values.reduce((a, b) => a + b * b, 0)
  return squares === 0 ? 1 : (sum * sum) / (values.length * squares)
}

/** A metric's value from handleSummary's data, or NaN when k6 did not report it. */
export function metricValue(data, name, stat) {
  const metric = data.metrics[name]
  if (!metric || metric.values[stat] === undefined) return NaN
  return metric.values[stat]
}
