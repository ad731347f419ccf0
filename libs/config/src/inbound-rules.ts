import { isIP } from 'node:net'
import { formatPath, type ConfigIssue } from './config-error.ts'
import type { FairlaneConfig, LimitsConfig } from './schema.ts'

const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/** A CIDR or a single address, as trustedProxies takes it. */
function cidrProblem(text: string): string | undefined {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const family = isIP(address)
  const bits = slash === -1 ? undefined : text.slice(slash + 1)
  const max = family === 6 ? 128 : 32
  if (family === 0 || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)))
    return `must be an IP address or CIDR such as 10.0.0.0/8 or fd00::/8 (got ${JSON.stringify(text)})`
  return undefined
}

export interface RuleHelpers {
  readonly tierIssue: (tier: string | undefined, path: string) => void
  readonly checkLimits: (limits: LimitsConfig | undefined, path: string) => void
}

/** Rules of routes, customers and trusted proxies that span keys. */
export function inboundIssues(config: FairlaneConfig, help: RuleHelpers): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const seen = new Map<string, string>()
  for (const [name, route] of Object.entries(config.routes)) {
    const base = formatPath(['routes', name])
    if (!Object.hasOwn(config.targets, route.target))
      issues.push({ path: `${base}.target`, message: `unknown target "${route.target}"` })
    for (const [model, target] of Object.entries(route.models)) {
      if (!Object.hasOwn(config.targets, target))
        issues.push({
          path: formatPath(['routes', name, 'models', model]),
          message: `unknown target "${target}"`,
        })
    }
    const prefix = route.pathPrefix
    if (/[?#%\\]/.test(prefix) || /\/\.{1,2}(\/|$)/.test(prefix)) {
      issues.push({
        path: `${base}.pathPrefix`,
        message: 'must be a plain path: no ?, #, %, \\ or . and .. segments',
      })
    } else if (prefix === '/t' || prefix.startsWith('/t/')) {
      issues.push({
        path: `${base}.pathPrefix`,
        message: 'must not be under /t/: that is the key-authenticated /t/<target>/ form',
      })
    }
    if (route.host !== undefined && !HOST.test(route.host)) {
      issues.push({
        path: `${base}.host`,
        message: `must be a lower-case host name without port (got ${JSON.stringify(route.host)})`,
      })
    }
    const at = `${route.host ?? '*'} ${prefix.replace(/\/+$/, '') || '/'}`
    const other = seen.get(at)
    if (other)
      issues.push({ path: `${base}.pathPrefix`, message: `same host and prefix as ${other}` })
    else seen.set(at, base)
    help.tierIssue(route.tier, `${base}.tier`)
    help.tierIssue(route.callers.ip?.tier, `${base}.callers.ip.tier`)
    help.checkLimits(route.limits, `${base}.limits`)
    const jwt = route.callers.jwt
    if (!jwt) continue
    const path = `${base}.callers.jwt`
    if (route.callers.header?.toLowerCase() === jwt.header.toLowerCase()) {
      issues.push({
        path: `${path}.header`,
        message: `is also callers.header: a header names the caller one way only`,
      })
    }
    const sources = [jwt.secret, jwt.publicKey, jwt.jwksFile].filter((s) => s !== undefined)
    if (jwt.algorithm === 'HS256' && (jwt.secret === undefined || sources.length > 1)) {
      issues.push({ path, message: 'HS256 needs secret (and neither publicKey nor jwksFile)' })
    }
    if (jwt.algorithm !== 'HS256' && (jwt.secret !== undefined || sources.length !== 1)) {
      issues.push({
        path,
        message: `${jwt.algorithm} needs exactly one of publicKey or jwksFile (and no secret)`,
      })
    }
  }
  const credentials = new Map<string, string>()
  const claims = new Map<string, string>()
  for (const [name, customer] of Object.entries(config.customers)) {
    const base = formatPath(['customers', name])
    if ((customer.credential === undefined) === (customer.claim === undefined)) {
      issues.push({ path: base, message: 'set exactly one of credential or claim' })
    }
    for (const [value, held, key] of [
      [customer.credential, credentials, 'credential'],
      [customer.claim, claims, 'claim'],
    ] as const) {
      if (value === undefined) continue
      const other = held.get(value)
      if (other) issues.push({ path: `${base}.${key}`, message: `same ${key} as ${other}` })
      else held.set(value, base)
    }
    help.tierIssue(customer.tier, `${base}.tier`)
    help.checkLimits(customer.limits, `${base}.limits`)
  }
  config.trustedProxies.forEach((cidr, i) => {
    const problem = cidrProblem(cidr)
    if (problem) issues.push({ path: `trustedProxies[${i}]`, message: problem })
  })
  return issues
}
