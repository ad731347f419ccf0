import { createHash } from 'node:crypto'
import { rateSpec, type FairlaneConfig, type LimitsConfig } from '@fairlane/config'
import type { PartitionSettings, TicketPolicy } from '@fairlane/actor'
import type { ScopeGroup, ScopeKind, ScopeLimit } from '@fairlane/limits'
import {
  CLIENT_POLICY_BOUNDS,
  FairlaneError,
  type ClientPolicy,
  type Ticket,
} from '@fairlane/protocol'
import { ROUTE_SPACE } from '../ingress/inbound/route-table.ts'
import { callerSettings } from './callers.ts'
import { MAX_SEGMENTS_PER_KEY, SegmentRegistry } from './segment-registry.ts'

/** Pseudo-target of the X-Fairlane-Url form: it has no target-level limits. */
export const URL_TARGET = '(url)'

/** Whether the limits set anything a scope enforces. */
function limiting(limits: LimitsConfig | undefined): limits is LimitsConfig {
  return !!limits && (!!limits.rate || !!limits.window || limits.concurrency !== undefined)
}

function scope(
  id: string,
  kind: ScopeKind,
  limits: LimitsConfig | undefined,
  group?: ScopeGroup,
): ScopeLimit | undefined {
  if (!limiting(limits)) return undefined
  return {
    id,
    kind,
    unit: limits.unit,
    ...(limits.rate ? { rate: rateSpec(limits.rate) } : {}),
    ...(limits.window
      ? { window: { limit: limits.window.limit, windowMs: limits.window.seconds * 1000 } }
      : {}),
    ...(limits.concurrency !== undefined ? { concurrency: limits.concurrency } : {}),
    onLedgerDown: limits.onLedgerDown,
    ...(group ? { group } : {}),
  }
}

/**
 * The configured limits of a ticket, narrowest first: key, workspace, target, global. The
 * actor derives them from its own config, so a ticket cannot name its own limits.
 */
function scopesFor(config: FairlaneConfig, ticket: Ticket): ScopeLimit[] {
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

/**
 * The key's in-flight cap on this target (or on the URL form): upstream connections are
 * pooled per address and shared by every target and workspace, so no key may hold more than
 * a bounded share of them. A key on a target is one lane, and a lane is one partition, so
 * its owner enforces this exactly in memory in both modes.
 */
function keyOnTargetScope(config: FairlaneConfig, ticket: Ticket): ScopeLimit {
  const target = ticket.target === URL_TARGET ? undefined : config.targets[ticket.target]
  return {
    id: `key-target:${ticket.workspace}/${ticket.keyId}@${ticket.target}`,
    kind: 'key',
    concurrency: (target ?? config.destinations).perKeyConcurrency,
  }
}

interface Cached {
  /** Cluster mode: scopes other partitions can touch go to the shared ledger. */
  readonly cluster: boolean
  readonly policies: Map<string, Omit<TicketPolicy, 'scopes'> & { scopes: readonly ScopeLimit[] }>
  readonly settings: Map<string, PartitionSettings>
  /** Target and global scopes of route tickets, per target: the same for all its callers. */
  readonly routeScopes: Map<string, { local: ScopeLimit[]; shared: ScopeLimit[] }>
  /** Segment ids of client policies in use, per workspace and per key. */
  readonly segments: SegmentRegistry
}

/**
 * A client policy becomes one more scope, only ever added: `user` is the key alone, `global`
 * and segment ids are shared by the workspace's keys that name them. The scope is named by
 * its owner and unit, not its numbers, so a client that changes its limit resizes one window
 * instead of creating another, and the number of client scopes stays bounded.
 */
function clientScope(ticket: Ticket, policy: ClientPolicy): ScopeLimit {
  const owner = policy.scope === 'user' ? `user:${ticket.keyId}` : `segment:${policy.scope}`
  return {
    id: `client:${ticket.workspace}/${owner}/${policy.unit}`,
    kind: 'client',
    unit: policy.unit,
    window: { limit: policy.limit, windowMs: policy.windowSeconds * 1000 },
  }
}

const caches = {
  embedded: new WeakMap<FairlaneConfig, Cached>(),
  cluster: new WeakMap<FairlaneConfig, Cached>(),
}

function cachedOf(config: FairlaneConfig, cluster = false): Cached {
  const cache = cluster ? caches.cluster : caches.embedded
  let cached = cache.get(config)
  if (!cached) {
    const segments = new SegmentRegistry(
      { perWorkspace: CLIENT_POLICY_BOUNDS.maxSegmentsPerWorkspace, perKey: MAX_SEGMENTS_PER_KEY },
      Date.now,
    )
    cached = { cluster, policies: new Map(), settings: new Map(), routeScopes: new Map(), segments }
    cache.set(config, cached)
  }
  return cached
}

/**
 * Whether only one partition's tickets can touch a scope, so its owner decides it exactly in
 * memory. Anything else is shared between actors and lives in the Redis ledger: a target
 * split into partitions, a workspace (and its keys) that reaches several partitions or the
 * X-Fairlane-Url form, and the global scope unless the whole config is one partition.
 */
function partitionLocal(config: FairlaneConfig, ticket: Ticket, kind: ScopeLimit['kind']): boolean {
  const single = (target: string | undefined) =>
    target !== undefined && (config.targets[target]?.partitions ?? 1) === 1
  if (kind === 'target') return single(ticket.target)
  const reach = (name: string) => {
    const workspace = config.workspaces[name]
    return workspace && workspace.hosts.length === 0 && workspace.targets.length === 1
      ? workspace.targets[0]
      : undefined
  }
  if (kind !== 'global') return single(reach(ticket.workspace))
  const names = Object.keys(config.workspaces)
  const routed = Object.values(config.routes).map((route) => route.target)
  const only = names.length > 0 ? reach(names[0] as string) : routed[0]
  return (
    single(only) &&
    names.every((name) => reach(name) === only) &&
    routed.every((target) => target === only)
  )
}

function settingsFor(config: FairlaneConfig, target: string): PartitionSettings {
  const cached = cachedOf(config)
  let settings = cached.settings.get(target)
  if (!settings) {
    settings = {
      tiers: Object.entries(config.tiers).map(([name, tier]) => ({ name, ...tier })),
      bounds: config.queue,
      quantum: config.queue.quantum,
      discipline: config.targets[target]?.discipline ?? 'fair',
      capacity: config.targets[target]?.limits?.concurrency,
      headroom: config.targets[target]?.headroom ?? 0,
      ...(config.targets[target] ? { adaptive: config.targets[target].adaptive } : {}),
    }
    cached.settings.set(target, settings)
  }
  return settings
}

/** The tier a ticket asks for when it is configured and not above `own`; `own` otherwise. */
function tierAtOrBelow(config: FairlaneConfig, own: string, asked: string | undefined): string {
  if (asked === undefined || asked === own || !Object.hasOwn(config.tiers, asked)) return own
  const ownPriority = config.tiers[own]?.priority ?? Number.POSITIVE_INFINITY
  return (config.tiers[asked]?.priority ?? 0) >= ownPriority ? asked : own
}

function partitionOf(lane: string, partitions: number): number {
  if (partitions <= 1) return 0
  return createHash('sha256').update(lane).digest().readUInt32BE(0) % partitions
}

/**
 * Everything the actor needs to queue and limit a ticket, from its own config: the lane
 * (one per key and target partition), the key's tier and weights, and the limits. Memoised
 * per config snapshot, so the request path allocates nothing for it but client scopes.
 */
export function ticketPolicy(
  config: FairlaneConfig,
  ticket: Ticket,
  cluster = false,
): TicketPolicy {
  const cached = cachedOf(config, cluster)
  if (ticket.workspace.startsWith(ROUTE_SPACE)) return callerPolicy(config, ticket, cached)
  const id = `${ticket.workspace}\u0000${ticket.keyId}\u0000${ticket.target}${ticket.tier === undefined ? '' : `\u0000${ticket.tier}`}`
  let policy = cached.policies.get(id)
  if (!policy) {
    const workspace = config.workspaces[ticket.workspace]
    const key = workspace?.keys.find((k) => k.id === ticket.keyId)
    const own = key?.tier ?? workspace?.tier ?? 'free'
    const tier = tierAtOrBelow(config, own, ticket.tier)
    const keyLane = `${ticket.workspace}/${ticket.keyId}`
    // A lane has one tier: a ticket below its key's waits in a lane of its own, in the key's
    // partition, so the key's limits there stay one state.
    const lane = tier === own ? keyLane : `${keyLane}~${tier}`
    const partitions = config.targets[ticket.target]?.partitions ?? 1
    const scopes = scopesFor(config, ticket)
    const shared = cluster ? scopes.filter((s) => !partitionLocal(config, ticket, s.kind)) : []
    const local = [
      keyOnTargetScope(config, ticket),
      ...(shared.length ? scopes.filter((s) => !shared.includes(s)) : scopes),
    ]
    policy = {
      identity: {
        lane,
        workspace: ticket.workspace,
        tier,
        laneWeight: key?.weight ?? 1,
        workspaceWeight: workspace?.weight ?? 1,
      },
      scopes: local,
      ...(shared.length ? { sharedScopes: shared } : {}),
      maxWaitMs: config.tiers[tier]?.maxWaitMs ?? 0,
      partition: `${ticket.target}#${partitionOf(keyLane, partitions)}`,
      settings: settingsFor(config, ticket.target),
    }
    cached.policies.set(id, policy)
  }
  if (!ticket.clientPolicies?.length) return policy
  const refused = cached.segments.admit(
    ticket.workspace,
    ticket.keyId,
    ticket.clientPolicies
      .filter((p) => p.scope !== 'user')
      .map((p) => ({ segment: p.scope, windowMs: p.windowSeconds * 1000 })),
  )
  if (refused) {
    throw new FairlaneError('bad_request', 'limit', `Fairlane-RateLimit-Policy: ${refused}`)
  }
  const client = ticket.clientPolicies.map((p) => clientScope(ticket, p))
  if (cached.cluster && !partitionLocal(config, ticket, 'client')) {
    return { ...policy, sharedScopes: [...(policy.sharedScopes ?? []), ...client] }
  }
  return { ...policy, scopes: [...policy.scopes, ...client] }
}

/**
 * The policy of a route's caller: its own lane (DRR treats each caller as a workspace of one
 * lane, so callers share a tier's service by weight and each has its own queue bounds), its
 * tier, weight and limits from the config (callers.ts), its in-flight cap on the target, and
 * the target and global scopes exactly as for keys. A caller is one lane on one partition,
 * so its own scopes are decided in memory by its owner in both modes. Customers' policies
 * are memoised like keys'; anonymous callers (unbounded in number) are built per ticket.
 */
function callerPolicy(config: FairlaneConfig, ticket: Ticket, cached: Cached): TicketPolicy {
  const customer = ticket.keyId.startsWith('c:')
  const id = `${ticket.workspace}\u0000${ticket.keyId}\u0000${ticket.target}`
  const held = customer ? cached.policies.get(id) : undefined
  if (held) return held
  const name = ticket.workspace.slice(ROUTE_SPACE.length)
  const route = Object.hasOwn(config.routes, name) ? config.routes[name] : undefined
  const caller = callerSettings(config, route, ticket.keyId)
  const lane = `${ticket.workspace}/${ticket.keyId}`
  let common = cached.routeScopes.get(ticket.target)
  if (!common) {
    const target = config.targets[ticket.target]
    const scopes = [
      scope(`target:${ticket.target}`, 'target', target?.limits),
      scope('global', 'global', config.limits.global),
    ].filter((s): s is ScopeLimit => s !== undefined)
    const shared = cached.cluster
      ? scopes.filter((s) => !partitionLocal(config, ticket, s.kind))
      : []
    common = { local: scopes.filter((s) => !shared.includes(s)), shared }
    cached.routeScopes.set(ticket.target, common)
  }
  // A caller holds one state per scope of its own: the route's bound is on callers.
  const group: ScopeGroup | undefined = route && {
    id: ticket.workspace,
    maxStates: route.callers.maxIdle * (limiting(caller.limits) ? 2 : 1),
  }
  const own: ScopeLimit = {
    id: `key-target:${lane}@${ticket.target}`,
    kind: 'key',
    concurrency: (config.targets[ticket.target] ?? config.destinations).perKeyConcurrency,
    ...(group ? { group } : {}),
  }
  const limits = scope(`caller:${lane}`, 'key', caller.limits, group)
  const policy: TicketPolicy = {
    identity: {
      lane,
      workspace: lane,
      tier: caller.tier,
      laneWeight: 1,
      workspaceWeight: caller.weight,
    },
    scopes: limits ? [own, limits, ...common.local] : [own, ...common.local],
    ...(common.shared.length ? { sharedScopes: common.shared } : {}),
    maxWaitMs: config.tiers[caller.tier]?.maxWaitMs ?? 0,
    partition: `${ticket.target}#${partitionOf(lane, config.targets[ticket.target]?.partitions ?? 1)}`,
    settings: settingsFor(config, ticket.target),
  }
  if (customer) cached.policies.set(id, policy)
  return policy
}
