import { randomBytes } from 'node:crypto'
import { ConfigError, ConfigSchema, formatPath } from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import { hashKeySecret, newKeySecret } from '../keys/key-secret.ts'
import { entryOf, type Layers, type Section } from '../store/overlay.ts'
import type { ConfigEdit } from '../store/redis-config-store.ts'

/**
 * The admin API's changes as pure functions of the stored state: each says what to write,
 * or refuses with a FairlaneError. The store validates the merged result and commits it.
 */

type Doc = Record<string, unknown>

/** The schema's own name patterns, so the API and the file accept the same names. */
const NAME_PATTERNS: Record<Section, RegExp> = {
  workspaces: new RegExp(Object.keys(ConfigSchema.properties.workspaces.patternProperties)[0]!),
  targets: new RegExp(Object.keys(ConfigSchema.properties.targets.patternProperties)[0]!),
  routes: new RegExp(Object.keys(ConfigSchema.properties.routes.patternProperties)[0]!),
  customers: new RegExp(Object.keys(ConfigSchema.properties.customers.patternProperties)[0]!),
}

export const NOUN: Record<Section, string> = {
  workspaces: 'workspace',
  targets: 'target',
  routes: 'route',
  customers: 'customer',
}

/**
 * Names are checked before anything else: validation alone would silently drop a name like
 * `__proto__` instead of refusing it.
 */
function checkNewName(section: Section, name: string): void {
  const pattern = NAME_PATTERNS[section]
  if (!pattern.test(name))
    throw new ConfigError('request path', [
      { path: formatPath([section, name]), message: `name must match ${pattern.source}` },
    ])
}

function existing(layers: Layers, section: Section, name: string): Doc {
  const entry = entryOf(layers, section, name)
  if (!entry || !isDoc(entry.doc))
    throw new FairlaneError('not_found', 'admin', `no ${NOUN[section]} "${name}"`)
  return entry.doc
}

function bodyDoc(body: unknown, what: string): Doc {
  if (body === undefined || body === null) return {}
  if (!isDoc(body))
    throw new ConfigError('request body', [{ path: '', message: `${what} must be a JSON object` }])
  return body
}

function keysOf(workspace: Doc): Doc[] {
  return Array.isArray(workspace['keys']) ? workspace['keys'].filter(isDoc) : []
}

function isDoc(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function putWorkspace(
  layers: Layers,
  name: string,
  body: unknown,
): ConfigEdit<{ created: boolean }> {
  checkNewName('workspaces', name)
  const doc = bodyDoc(body, 'a workspace')
  if ('keys' in doc)
    throw new ConfigError('request body', [
      {
        path: 'keys',
        message: `keys are managed through /admin/v1/workspaces/${name}/keys and kept by PUT`,
      },
    ])
  const before = entryOf(layers, 'workspaces', name)
  const keys = before && isDoc(before.doc) ? keysOf(before.doc) : []
  return {
    writes: [{ section: 'workspaces', name, doc: { ...doc, keys } }],
    result: { created: before === undefined },
  }
}

export function putTarget(
  layers: Layers,
  name: string,
  body: unknown,
): ConfigEdit<{ created: boolean }> {
  checkNewName('targets', name)
  const doc = bodyDoc(body, 'a target')
  return {
    writes: [{ section: 'targets', name, doc }],
    result: { created: entryOf(layers, 'targets', name) === undefined },
  }
}

/** A route or a customer, replaced whole; validated with the rest of the config by the store. */
export function putEntry(
  layers: Layers,
  section: 'routes' | 'customers',
  name: string,
  body: unknown,
): ConfigEdit<{ created: boolean }> {
  checkNewName(section, name)
  const doc = bodyDoc(body, `a ${NOUN[section]}`)
  return {
    writes: [{ section, name, doc }],
    result: { created: entryOf(layers, section, name) === undefined },
  }
}

/** A tombstone rather than a removal, so the name is gone even where a file defines it. */
export function remove(layers: Layers, section: Section, name: string): ConfigEdit<void> {
  existing(layers, section, name)
  return { writes: [{ section, name, doc: null }], result: undefined }
}

export interface NewKey {
  readonly id: string
  /** Shown once, in the answer to create or rotate; only its hash is stored. */
  readonly secret: string
}

export function createKey(layers: Layers, workspace: string, body: unknown): ConfigEdit<NewKey> {
  const doc = existing(layers, 'workspaces', workspace)
  const fields = bodyDoc(body, 'a key')
  for (const field of ['hash', 'secret'])
    if (field in fields)
      throw new ConfigError('request body', [
        { path: field, message: 'is made by Fairlane; the secret is in the answer' },
      ])
  const keys = keysOf(doc)
  const id = fields['id'] ?? `key-${randomBytes(6).toString('hex')}`
  if (keys.some((key) => key['id'] === id))
    throw new FairlaneError(
      'conflict',
      'admin',
      `workspace "${workspace}" already has a key "${String(id)}"`,
    )
  const secret = newKeySecret()
  const key = { ...fields, id, hash: hashKeySecret(secret) }
  return {
    writes: [{ section: 'workspaces', name: workspace, doc: { ...doc, keys: [...keys, key] } }],
    // A body id that is not a string fails validation before this is ever answered.
    result: { id: String(id), secret },
  }
}

export function rotateKey(layers: Layers, workspace: string, id: string): ConfigEdit<NewKey> {
  const doc = existing(layers, 'workspaces', workspace)
  const keys = keysOf(doc)
  if (!keys.some((key) => key['id'] === id)) throw noKey(workspace, id)
  const secret = newKeySecret()
  const rotated = keys.map((key) =>
    key['id'] === id ? { ...key, hash: hashKeySecret(secret) } : key,
  )
  return {
    writes: [{ section: 'workspaces', name: workspace, doc: { ...doc, keys: rotated } }],
    result: { id, secret },
  }
}

export function revokeKey(layers: Layers, workspace: string, id: string): ConfigEdit<void> {
  const doc = existing(layers, 'workspaces', workspace)
  const keys = keysOf(doc)
  if (!keys.some((key) => key['id'] === id)) throw noKey(workspace, id)
  return {
    writes: [
      {
        section: 'workspaces',
        name: workspace,
        doc: { ...doc, keys: keys.filter((key) => key['id'] !== id) },
      },
    ],
    result: undefined,
  }
}

function noKey(workspace: string, id: string): FairlaneError {
  return new FairlaneError('not_found', 'admin', `workspace "${workspace}" has no key "${id}"`)
}
