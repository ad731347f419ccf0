import { FairlaneError } from './fairlane-error.ts'
import { readMembers, type BareItem, type Member } from './structured-fields.ts'

/**
 * `Fairlane-RateLimit-Policy: <limit>;w=<seconds>;u=<request|cost|cents>;s=<global|user|segment-id>`
 *
 * A limit the client asks Fairlane to hold it to, on top of every configured limit. It can
 * only add a scope, never replace one, so it can make a caller stricter and never looser.
 * Several policies may be sent, comma-separated: an RFC 8941 List, read by structured-fields.ts.
 */
export interface ClientPolicy {
  /** Units allowed in any sliding window of `windowSeconds`. */
  readonly limit: number
  readonly windowSeconds: number
  /** `request` counts requests; `cost` counts cost units; `cents` the price of priced requests. */
  readonly unit: 'request' | 'cost' | 'cents'
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

function parseOne(member: Member | undefined): ClientPolicy {
  if (member === undefined) throw malformed('each policy is <limit>;w=<seconds>[;u=…][;s=…]')
  const head = member.value
  if (member.key !== undefined || typeof head !== 'number' || !Number.isInteger(head) || head < 0) {
    const got = (member.key === undefined ? '' : `${member.key}=`) + String(head ?? '')
    throw malformed(`limit must be a whole number (got ${JSON.stringify(got)})`)
  }
  const limit = head
  if (limit < 1 || limit > CLIENT_POLICY_BOUNDS.maxLimit) {
    throw malformed(`limit must be between 1 and ${CLIENT_POLICY_BOUNDS.maxLimit}`)
  }
  if (member.repeatedParam !== undefined) {
    throw malformed(`parameter ${member.repeatedParam} given twice`)
  }
  let windowSeconds: number | undefined
  let unit: ClientPolicy['unit'] = 'request'
  let scope = 'user'
  for (const [name, value] of member.params) {
    switch (name) {
      case 'w': {
        const seconds = wholeNumber(value)
        if (
          seconds === undefined ||
          seconds < 1 ||
          seconds > CLIENT_POLICY_BOUNDS.maxWindowSeconds
        ) {
          throw malformed(
            `w must be whole seconds between 1 and ${CLIENT_POLICY_BOUNDS.maxWindowSeconds}`,
          )
        }
        windowSeconds = seconds
        break
      }
      case 'u':
        if (value !== 'request' && value !== 'cost' && value !== 'cents')
          throw malformed('u must be request, cost or cents')
        unit = value
        break
      case 's':
        if (typeof value !== 'string' || !SEGMENT.test(value))
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

/** A whole number, written bare (`60`) or quoted (`"60"`) as clients have sent it. */
function wholeNumber(value: BareItem): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined
}

/** Parses the header; undefined when absent. Throws `bad_request` (stage `limit`) when malformed. */
export function parseClientPolicies(
  header: string | string[] | undefined,
): ClientPolicy[] | undefined {
  if (header === undefined) return undefined
  const text = Array.isArray(header) ? header.join(',') : header
  // One past the bound is enough to tell that there are too many.
  const members = readMembers(text, CLIENT_POLICY_BOUNDS.maxPolicies + 1)
  if (members.length > CLIENT_POLICY_BOUNDS.maxPolicies) {
    throw malformed(`at most ${CLIENT_POLICY_BOUNDS.maxPolicies} policies`)
  }
  return members.map(parseOne)
}
