import { ConfigSchema } from './schema.ts'

/**
 * The config schema as a plain JSON Schema document for editors (docs/config.schema.json).
 * Produced from the same declaration that validates at start-up, so they cannot disagree.
 */
function configJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://fairlane.dev/schemas/config.schema.json',
    ...(optionalDefaults(JSON.parse(JSON.stringify(ConfigSchema))) as Record<string, unknown>),
  }
}

/**
 * Inside Fairlane a key with a default is required (the validator fills it in first); in an
 * editor (or a client's request) the same key may be left out, so it must not be flagged as
 * missing. Takes a schema as plain JSON.
 */
export function optionalDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(optionalDefaults)
  if (node === null || typeof node !== 'object') return node
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(node)) out[key] = optionalDefaults(value)
  const properties = out['properties'] as Record<string, { default?: unknown }> | undefined
  const required = out['required']
  if (properties && Array.isArray(required)) {
    const stillRequired = required.filter((name: string) => properties[name]?.default === undefined)
    if (stillRequired.length) out['required'] = stillRequired
    else delete out['required']
  }
  return out
}

export function configJsonSchemaText(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + '\n'
}
