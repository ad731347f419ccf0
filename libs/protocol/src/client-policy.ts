import { FairlaneError } from './fairlane-error.ts'

/**
 * `Fairlane-RateLimit-Policy: <limit>;w=<seconds>;u=<request|cost>;s=<global|user|segment-id>`
 *
 * A limit the client asks Fairlane to hold it to, on top of every configured limit. It can
 * only add a scope, never replace one, so it can make a caller stricter and never looser.
 * Several policies may be sent, comma-separated.
 */
export interface ClientPolicy {
  /** Units allowed in any sliding window of `windowSeconds`. */
  readonly limit: number
  readonly windowSeconds: number
  /** `request` counts requests; `cost` counts cost units. */
  readonly unit: 'request' | 'cost'
  /** `user` is this key alone; `global` and a segment id are shared by the workspace's keys. */
  readonly scope: string
}

/** Bounds that keep a client-made scope cheap: its window log holds at most `limit` entries. */
export const CLIENT_POLICY_BOUNDS = {
  maxLimit: 10_000,
  maxWindowSeconds: 86_400,
  maxPolicies: 4,
  /** Distinct segment ids a workspace may use, so clients cannot grow memory without end. */
  maxSegmentsPerWorkspace: 64,
} as const

const SEGMENT = /^[A-Za-z0-9_.-]{1,64}$/

function malformed(detail: string): FairlaneError {
  return new FairlaneError('bad_request', 'limit', `malformed Fairlane-RateLimit-Policy: ${detail}`)
}

function parseOne(item: string): ClientPolicy {
  const [head, ...params] = item.split(';').map((p) => p.trim())
  if (!head || !/^\d+$/.test(head))
    throw malformed(`limit must be a whole number (got ${JSON.stringify(head ?? '')})`)
  const limit = Number(head)
  if (limit < 1 || limit > CLIENT_POLICY_BOUNDS.maxLimit) {
    throw malformed(`limit must be between 1 and ${CLIENT_POLICY_BOUNDS.maxLimit}`)
  }
  let windowSeconds: number | undefined
  let unit: ClientPolicy['unit'] = 'request'
  let scope = 'user'
  const seen = new Set<string>()
  for (const param of params) {
    const eq = param.indexOf('=')
    const name = eq === -1 ? param : param.slice(0, eq)
    const value = eq === -1 ? '' : param.slice(eq + 1).replace(/^"(.*)"$/, '$1')
    if (seen.has(name)) throw malformed(`parameter ${name} given twice`)
    seen.add(name)
    switch (name) {
      case 'w':
        if (
          !/^\d+$/.test(value) ||
          Number(value) < 1 ||
          Number(value) > CLIENT_POLICY_BOUNDS.maxWindowSeconds
        ) {
          throw malformed(
            `w must be whole seconds between 1 and ${CLIENT_POLICY_BOUNDS.maxWindowSeconds}`,
          )
        }
        windowSeconds = Number(value)
        break
      case 'u':
        if (value !== 'request' && value !== 'cost') throw malformed('u must be request or cost')
        unit = value
        break
      case 's':
        if (!SEGMENT.test(value))
          throw malformed('s must be global, user or a segment id of [A-Za-z0-9_.-]{1,64}')
        scope = value
        break
      default:
        throw malformed(`unknown parameter ${JSON.stringify(name)}`)
    }
  }
  if (windowSeconds === undefined) throw malformed('w=<seconds> is required')
  return { limit, windowSeconds, unit, scope }
}

/** Parses the header; undefined when absent. Throws `bad_request` (stage `limit`) when malformed. */
export function parseClientPolicies(
  header: string | string[] | undefined,
): ClientPolicy[] | undefined {
  if (header === undefined) return undefined
  const text = Array.isArray(header) ? header.join(',') : header
  const items = text.split(',').map((i) => i.trim())
  if (items.length > CLIENT_POLICY_BOUNDS.maxPolicies) {
    throw malformed(`at most ${CLIENT_POLICY_BOUNDS.maxPolicies} policies`)
  }
  return items.map(parseOne)
}
