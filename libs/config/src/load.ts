import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { ConfigError, formatPath, type ConfigIssue } from './config-error.ts'
import { structureIssues } from './config-structure.ts'
import { resolveReferences, type Env, type ReferenceIssue } from './env-references.ts'
import type { FairlaneConfig } from './schema.ts'
import { validateConfig } from './validate.ts'

/** Parses config text: JSON for `.json` files, YAML (a superset of JSON) otherwise. */
function parseConfigText(text: string, source: string): unknown {
  try {
    if (extname(source).toLowerCase() === '.json') return JSON.parse(text)
    return parseYaml(text, { uniqueKeys: true, prettyErrors: true })
  } catch (err) {
    const where =
      err instanceof YAMLParseError && err.linePos?.[0]
        ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}`
        : ''
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new ConfigError(source, [{ path: where, message: `cannot parse: ${message}` }])
  }
}

/** Parsed value → complete, typed config, or a ConfigError listing every problem. */
export function configFromValue(value: unknown, env: Env, source: string): FairlaneConfig {
  const malformed = structureIssues(value)
  if (malformed.length) throw new ConfigError(source, malformed)
  const referenceIssues: ReferenceIssue[] = []
  const resolved = resolveReferences(value, env, referenceIssues)
  const issues: ConfigIssue[] = referenceIssues.map((i) => ({
    path: formatPath(i.path),
    message: i.message,
  }))
  const result = validateConfig(resolved)
  if (!result.ok) issues.push(...result.issues)
  if (issues.length || !result.ok) throw new ConfigError(source, issues)
  return result.config
}

export async function loadConfigFile(
  path: string,
  env: Env = process.env,
): Promise<FairlaneConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new ConfigError(path, [{ path: '', message: `cannot read file (${code})` }])
  }
  return configFromValue(parseConfigText(text, path), env, path)
}
