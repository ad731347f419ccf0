import { hostname } from 'node:os'
import { ConfigError, type ConfigIssue } from '@fairlane/config'

const ROLES = ['ingress', 'actor', 'worker'] as const
type Role = (typeof ROLES)[number]

/** Who this node is and where its cluster is: the environment, not the shared config file. */
export interface NodeSettings {
  readonly nodeId: string
  readonly region: string | undefined
  readonly roles: ReadonlySet<Role>
  /** Both set: cluster mode. Neither: embedded mode. */
  readonly cluster: { readonly natsUrl: string; readonly redisUrl: string } | undefined
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/**
 * FAIRLANE_NODE_ID (default: host name and pid), FAIRLANE_REGION, FAIRLANE_ROLES (comma
 * list of ingress, actor, worker; default all), FAIRLANE_NATS_URL and FAIRLANE_REDIS_URL
 * (cluster mode when both are set). Every problem is reported at once, as for the file.
 */
export function nodeSettingsFrom(env: Readonly<Record<string, string | undefined>>): NodeSettings {
  const issues: ConfigIssue[] = []
  const nodeId = env['FAIRLANE_NODE_ID'] || `${hostname()}-${process.pid}`
  if (!ID.test(nodeId)) {
    issues.push({
      path: '/FAIRLANE_NODE_ID',
      message: `must match ${ID.source} (got ${JSON.stringify(nodeId)})`,
    })
  }
  const region = env['FAIRLANE_REGION'] || undefined
  if (region !== undefined && !ID.test(region)) {
    issues.push({
      path: '/FAIRLANE_REGION',
      message: `must match ${ID.source} (got ${JSON.stringify(region)})`,
    })
  }
  const roles = new Set<Role>()
  for (const role of (env['FAIRLANE_ROLES'] || ROLES.join(',')).split(',').map((r) => r.trim())) {
    if ((ROLES as readonly string[]).includes(role)) roles.add(role as Role)
    else
      issues.push({
        path: '/FAIRLANE_ROLES',
        message: `unknown role ${JSON.stringify(role)} (roles: ${ROLES.join(', ')})`,
      })
  }
  const natsUrl = env['FAIRLANE_NATS_URL'] || undefined
  const redisUrl = env['FAIRLANE_REDIS_URL'] || undefined
  if ((natsUrl === undefined) !== (redisUrl === undefined)) {
    issues.push({
      path: natsUrl ? '/FAIRLANE_REDIS_URL' : '/FAIRLANE_NATS_URL',
      message: 'cluster mode needs both FAIRLANE_NATS_URL and FAIRLANE_REDIS_URL',
    })
  }
  if (!natsUrl && roles.size !== ROLES.length && env['FAIRLANE_ROLES']) {
    issues.push({
      path: '/FAIRLANE_ROLES',
      message: 'embedded mode runs every role; roles need cluster mode',
    })
  }
  if (issues.length > 0) throw new ConfigError('environment', issues)
  return {
    nodeId,
    region,
    roles,
    cluster: natsUrl && redisUrl ? { natsUrl, redisUrl } : undefined,
  }
}
