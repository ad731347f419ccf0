import { rateSpec, type FairlaneConfig, type LimitsConfig } from '@fairlane/config'
import type { ScopeKind, ScopeLimit } from '@fairlane/limits'
import type { Ticket } from '@fairlane/protocol'

/** Pseudo-target of the X-Fairlane-Url form: it has no target-level limits. */
export const URL_TARGET = '(url)'

function scope(
  id: string,
  kind: ScopeKind,
  limits: LimitsConfig | undefined,
): ScopeLimit | undefined {
  if (!limits || (!limits.rate && limits.concurrency === undefined)) return undefined
  return {
    id,
    kind,
    ...(limits.rate ? { rate: rateSpec(limits.rate) } : {}),
    ...(limits.concurrency !== undefined ? { concurrency: limits.concurrency } : {}),
  }
}

/**
 * The limits that apply to a ticket, narrowest first: key, workspace, target, global. The
 * actor derives them from its own config, so a ticket cannot name its own limits.
 */
export function scopesFor(config: FairlaneConfig, ticket: Ticket): ScopeLimit[] {
  const workspace = config.workspaces[ticket.workspace]
  const key = workspace?.keys.find((k) => k.id === ticket.keyId)
  const target = ticket.target === URL_TARGET ? undefined : config.targets[ticket.target]
  return [
    scope(`key:${ticket.workspace}/${ticket.keyId}`, 'key', key?.limits),
    scope(`workspace:${ticket.workspace}`, 'workspace', workspace?.limits),
    scope(`target:${ticket.target}`, 'target', target?.limits),
    scope('global', 'global', config.limits.global),
  ].filter((s): s is ScopeLimit => s !== undefined)
}

const cache = new WeakMap<FairlaneConfig, Map<string, ScopeLimit[]>>()

/** scopesFor, memoised per config snapshot: the request path does no allocation for it. */
export function cachedScopesFor(config: FairlaneConfig, ticket: Ticket): readonly ScopeLimit[] {
  let byLane = cache.get(config)
  if (!byLane) {
    byLane = new Map()
    cache.set(config, byLane)
  }
  const id = `${ticket.workspace}\u0000${ticket.keyId}\u0000${ticket.target}`
  let scopes = byLane.get(id)
  if (!scopes) {
    scopes = scopesFor(config, ticket)
    byLane.set(id, scopes)
  }
  return scopes
}
