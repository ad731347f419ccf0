import type { ScopeLimit } from '@fairlane/limits'
import type { Writable } from '@fairlane/protocol'

/**
 * A lane's scopes split for a leased share (docs/cluster.md#leased-shares): `units` are the
 * rate and window limits each lent admission spends, `slots` the concurrency limits a lent
 * slot holds. An ingress node reuses a slot for request after request while its grant
 * lasts, so slots are lent apart from units instead of one per admission.
 */
export function splitConcurrency(scopes: readonly ScopeLimit[]): {
  readonly units: ScopeLimit[]
  readonly slots: ScopeLimit[]
} {
  const units: ScopeLimit[] = []
  const slots: ScopeLimit[] = []
  for (const scope of scopes) {
    if (scope.concurrency === undefined) {
      units.push(scope)
      continue
    }
    slots.push({ id: scope.id, kind: scope.kind, concurrency: scope.concurrency })
    if (scope.rate || scope.window) units.push(withoutConcurrency(scope))
  }
  return { units, slots }
}

function withoutConcurrency(scope: ScopeLimit): ScopeLimit {
  const units: Writable<ScopeLimit> = { ...scope }
  delete units.concurrency
  return units
}
