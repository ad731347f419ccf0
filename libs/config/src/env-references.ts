/**
 * `${VAR}` and `${VAR:-default}` references inside string values of a parsed config, so a
 * secret never has to be written into the file. `$${` is a literal `${`. Substitution runs
 * after parsing, so a value can hold any character without breaking YAML.
 */

export type Env = Readonly<Record<string, string | undefined>>

export interface ReferenceIssue {
  readonly path: (string | number)[]
  readonly message: string
}

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const MALFORMED = /\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})/

function substitute(
  value: string,
  env: Env,
  path: (string | number)[],
  issues: ReferenceIssue[],
): unknown {
  const cleaned = value.replaceAll('$${', '')
  if (MALFORMED.test(cleaned)) {
    issues.push({ path, message: 'malformed ${…} reference (use ${VAR} or ${VAR:-default})' })
    return value
  }
  const result = value.replace(
    REFERENCE,
    (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${'
      const found = env[name as string]
      if (found !== undefined && found !== '') return found
      if (fallback !== undefined) return fallback
      issues.push({ path, message: `environment variable ${name} is not set` })
      return match
    },
  )
  return result
}

export function resolveReferences(
  value: unknown,
  env: Env,
  issues: ReferenceIssue[],
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') return substitute(value, env, path, issues)
  if (Array.isArray(value))
    return value.map((item, i) => resolveReferences(item, env, issues, [...path, i]))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) {
      out[key] = resolveReferences(item, env, issues, [...path, key])
    }
    return out
  }
  return value
}
