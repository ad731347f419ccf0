import { Ajv, type ErrorObject } from 'ajv'
import { ConfigSchema, type FairlaneConfig, type LimitsConfig } from './schema.ts'
import { formatPath, type ConfigIssue } from './config-error.ts'
import { inboundIssues } from './inbound-rules.ts'

// useDefaults fills every omitted key from the schema, so the typed config that comes out is
// complete; allErrors reports every problem instead of the first.
// verbose keeps the failing schema on each error, to name what a record key must look like;
// coerceTypes reads "8080" as 8080 where the schema wants a number, which is how ${ENV}
// references (always strings) become ports, limits and flags.
const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  strict: false,
  verbose: true,
  coerceTypes: true,
})
const validateSchema = ajv.compile<FairlaneConfig>(ConfigSchema)

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
}

function schemaIssue(error: ErrorObject): ConfigIssue {
  const path = pointerToPath(error.instancePath)
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty'])
      const patterns = Object.keys(
        (error.parentSchema as { patternProperties?: object } | undefined)?.patternProperties ?? {},
      )
      return {
        path: formatPath(path),
        message: patterns.length
          ? `name "${name}" is not allowed (must match ${patterns.join(' or ')})`
          : `unknown key "${name}"`,
      }
    }
    case 'required':
      return {
        path: formatPath(path),
        message: `missing required key "${String(params['missingProperty'])}"`,
      }
    case 'pattern':
      return { path: formatPath(path), message: `must match ${String(params['pattern'])}` }
    default:
      return { path: formatPath(path), message: error.message ?? 'is invalid' }
  }
}

function collapse(errors: readonly ErrorObject[]): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
  for (const error of errors) {
    // A union of literals fails once per branch; say once what is allowed instead.
    if (anyOfPaths.has(error.instancePath)) {
      if (error.keyword !== 'anyOf') continue
      const allowed = errors
        .filter((e) => e.instancePath === error.instancePath && e.keyword === 'const')
        .map((e) => JSON.stringify((e.params as { allowedValue: unknown }).allowedValue))
      issues.push({
        path: formatPath(pointerToPath(error.instancePath)),
        message: allowed.length
          ? `must be one of ${allowed.join(', ')}`
          : 'does not match any allowed form',
      })
      continue
    }
    issues.push(schemaIssue(error))
  }
  const seen = new Set<string>()
  return issues.filter((i) => {
    const id = `${i.path}\u0000${i.message}`
    if (seen.has(id)) return false
    seen.add(id)
    return true
  })
}

function checkUrl(raw: string): string | undefined {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return `must be an absolute http(s) URL (got ${JSON.stringify(raw)})`
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `must be an absolute http(s) URL (got ${JSON.stringify(raw)})`
  }
  if (url.username || url.password)
    return 'must not contain userinfo; put credentials in upstreamHeaders'
  if (url.search || url.hash) return 'must not contain a query or fragment'
  return undefined
}

/**
 * The characters undici (like Node's http) allows in a header value. Anything else (CR, LF,
 * another control character, a character beyond Latin-1) passes a type check and then fails
 * every request of the target. The value is usually a secret: the message never echoes it.
 */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

function checkHeaderValue(value: string): string | undefined {
  if (HEADER_VALUE.test(value)) return undefined
  return 'must not contain CR, LF, other control characters or characters beyond Latin-1 (from ${ENV}: check for a trailing newline)'
}

const HOST_PATTERN =
  /^(\*|(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?)$/

function checkHostPattern(pattern: string): string | undefined {
  // A scheme, port, path or userinfo would be parsed as part of a URL rather than rejected.
  if (/[\s/:@?#[\]\\]/.test(pattern))
    return `must be a host name, *.domain or * (got ${JSON.stringify(pattern)})`
  let ascii: string
  try {
    const wildcard = pattern.startsWith('*.')
    ascii =
      (wildcard ? '*.' : '') + new URL(`https://${wildcard ? pattern.slice(2) : pattern}/`).hostname
  } catch {
    ascii = ''
  }
  if (pattern === '*' || (ascii && HOST_PATTERN.test(ascii))) return undefined
  return `must be a host name, *.domain or * (got ${JSON.stringify(pattern)})`
}

function checkLimits(limits: LimitsConfig | undefined, path: string, issues: ConfigIssue[]): void {
  const rate = limits?.rate
  if (!rate) return
  if ((rate.rps === undefined) === (rate.rpm === undefined)) {
    issues.push({ path: `${path}.rate`, message: 'set exactly one of rps or rpm' })
  }
}

/** Rules that span keys, which a JSON Schema cannot say. */
function semanticIssues(config: FairlaneConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  checkLimits(config.limits.global, 'limits.global', issues)
  for (const [name, target] of Object.entries(config.targets)) {
    const base = formatPath(['targets', name])
    target.endpoints.forEach((endpoint, i) => {
      const problem = checkUrl(endpoint.url)
      if (problem) issues.push({ path: `${base}.endpoints[${i}].url`, message: problem })
    })
    for (const [header, value] of Object.entries(target.upstreamHeaders)) {
      const problem = checkHeaderValue(value)
      if (problem)
        issues.push({
          path: formatPath(['targets', name, 'upstreamHeaders', header]),
          message: problem,
        })
    }
    checkLimits(target.limits, `${base}.limits`, issues)
    if (target.headroom > 0 && !(target.headroom < (target.limits?.concurrency ?? 0))) {
      issues.push({
        path: `${base}.headroom`,
        message: 'needs limits.concurrency, and must be smaller than it',
      })
    }
  }
  const shares = Object.values(config.tiers).reduce((sum, tier) => sum + tier.minShare, 0)
  if (shares >= 1)
    issues.push({
      path: 'tiers',
      message: `minimum shares add up to ${shares}; they must leave room (< 1)`,
    })
  const tierIssue = (tier: string | undefined, path: string) => {
    if (tier !== undefined && !Object.hasOwn(config.tiers, tier)) {
      issues.push({
        path,
        message: `unknown tier "${tier}" (tiers: ${Object.keys(config.tiers).join(', ')})`,
      })
    }
  }
  const hashes = new Map<string, string>()
  for (const [name, workspace] of Object.entries(config.workspaces)) {
    const base = formatPath(['workspaces', name])
    tierIssue(workspace.tier, `${base}.tier`)
    workspace.targets.forEach((target, i) => {
      if (!(target in config.targets)) {
        issues.push({ path: `${base}.targets[${i}]`, message: `unknown target "${target}"` })
      }
    })
    for (const [model, target] of Object.entries(workspace.models)) {
      if (!workspace.targets.includes(target)) {
        issues.push({
          path: formatPath(['workspaces', name, 'models', model]),
          message: `target "${target}" must be one of this workspace's targets (${workspace.targets.join(', ') || 'none'})`,
        })
      }
    }
    workspace.hosts.forEach((pattern, i) => {
      const problem = checkHostPattern(pattern)
      if (problem) issues.push({ path: `${base}.hosts[${i}]`, message: problem })
    })
    checkLimits(workspace.limits, `${base}.limits`, issues)
    const ids = new Set<string>()
    workspace.keys.forEach((key, i) => {
      const path = `${base}.keys[${i}]`
      if (ids.has(key.id))
        issues.push({ path: `${path}.id`, message: `duplicate key id "${key.id}"` })
      ids.add(key.id)
      const other = hashes.get(key.hash)
      if (other) issues.push({ path: `${path}.hash`, message: `same secret as ${other}` })
      else hashes.set(key.hash, path)
      tierIssue(key.tier, `${path}.tier`)
      checkLimits(key.limits, `${path}.limits`, issues)
    })
  }
  issues.push(
    ...inboundIssues(config, {
      tierIssue,
      checkLimits: (limits, path) => checkLimits(limits, path, issues),
    }),
  )
  return issues
}

export type ValidationResult =
  | { readonly ok: true; readonly config: FairlaneConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] }

/**
 * A key written with no value (`maxBodyBytes:` in YAML) means "not set", so its default
 * applies; otherwise type coercion would quietly read it as 0, "" or false.
 */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) if (item !== null) out[key] = withoutNulls(item)
  return out
}

/** Validates a parsed config and fills its defaults. The input is not modified. */
export function validateConfig(input: unknown): ValidationResult {
  const candidate: unknown = withoutNulls(input ?? {})
  if (!validateSchema(candidate))
    return { ok: false, issues: collapse(validateSchema.errors ?? []) }
  const issues = semanticIssues(candidate)
  return issues.length ? { ok: false, issues } : { ok: true, config: candidate }
}
