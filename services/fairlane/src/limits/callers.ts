import type { FairlaneConfig, LimitsConfig, RouteConfig } from '@fairlane/config'

/**
 * The caller of a route's lane, as the ticket's keyId carries it (the ticket's workspace is
 * `route:<name>`). One spelling per caller, the same on every node, so a caller has one lane
 * in the whole cluster:
 * - `c:<customer>`: a customers entry matched the credential hash or the verified claim;
 * - `h:<hex>`: SHA-256 of the credential in the route's caller header;
 * - `j:<hex>` or `j:<hex>:<tier>`: SHA-256 of the verified claim, with the tier a verified
 *   tier claim named;
 * - `ip:<network>/<bits>`: the client address aggregated to the route's prefix.
 */
export type CallerId = string

export interface CallerSettings {
  readonly tier: string
  readonly weight: number
  /** The caller's own limits: its customer entry's, or the route's for every other caller. */
  readonly limits: LimitsConfig | undefined
}

interface CustomerIndex {
  /** Customer name by the hex SHA-256 of its credential. */
  readonly byCredential: ReadonlyMap<string, string>
  readonly byClaim: ReadonlyMap<string, string>
}

const indexes = new WeakMap<FairlaneConfig, CustomerIndex>()

/** The customers table as lookups, built once per config snapshot. */
export function customersOf(config: FairlaneConfig): CustomerIndex {
  let index = indexes.get(config)
  if (!index) {
    const byCredential = new Map<string, string>()
    const byClaim = new Map<string, string>()
    for (const [name, customer] of Object.entries(config.customers)) {
      if (customer.credential) byCredential.set(customer.credential.slice('sha256:'.length), name)
      if (customer.claim !== undefined) byClaim.set(customer.claim, name)
    }
    index = { byCredential, byClaim }
    indexes.set(config, index)
  }
  return index
}

/**
 * Tier, weight and limits of a caller, from the config only (a client-set header never
 * reaches here): a customer entry first, then a verified tier claim, then the tier of IP
 * callers, then the route's. A tier that a reload removed falls back the same way.
 */
export function callerSettings(
  config: FairlaneConfig,
  route: RouteConfig | undefined,
  caller: CallerId,
): CallerSettings {
  const known = (tier: string | undefined) =>
    tier !== undefined && Object.hasOwn(config.tiers, tier) ? tier : undefined
  const fallback = known(route?.tier) ?? 'free'
  if (caller.startsWith('c:')) {
    const name = caller.slice(2)
    const customer = Object.hasOwn(config.customers, name) ? config.customers[name] : undefined
    if (customer) {
      return {
        tier: known(customer.tier) ?? fallback,
        weight: customer.weight ?? route?.weight ?? 1,
        limits: customer.limits ?? route?.limits,
      }
    }
  }
  let tier = fallback
  if (caller.startsWith('j:')) {
    const claimed = caller.indexOf(':', 2)
    if (claimed !== -1) tier = known(caller.slice(claimed + 1)) ?? fallback
  } else if (caller.startsWith('ip:')) tier = known(route?.callers.ip?.tier) ?? fallback
  return { tier, weight: route?.weight ?? 1, limits: route?.limits }
}
