import {
  formatPath,
  resolveReferences,
  validateConfig,
  type ConfigIssue,
  type Env,
  type FairlaneConfig,
  type ValidationResult,
} from '@fairlane/config'

/** The parts of the config a cluster keeps in Redis; everything else comes from the file. */
export type Section = 'workspaces' | 'targets' | 'routes' | 'customers'

const SECTIONS: readonly Section[] = ['workspaces', 'targets', 'routes', 'customers']

/**
 * What Redis holds, as it was written: raw documents (with `${ENV}` references unresolved,
 * so an upstream credential stays in each node's environment and never in Redis), by name.
 * `null` is a tombstone: the name is deleted even where the file defines it.
 */
export interface Overlay {
  /** Random id of this store's lifetime in Redis: a new one after Redis lost its data. */
  readonly epoch: string
  /** Incremented by every change; 0 before the first. */
  readonly version: number
  readonly workspaces: ReadonlyMap<string, unknown>
  readonly targets: ReadonlyMap<string, unknown>
  readonly routes: ReadonlyMap<string, unknown>
  readonly customers: ReadonlyMap<string, unknown>
}

export const EMPTY_OVERLAY: Overlay = {
  epoch: '',
  version: 0,
  workspaces: new Map(),
  targets: new Map(),
  routes: new Map(),
  customers: new Map(),
}

/** The file's config and what Redis overlays on it. */
export interface Layers {
  readonly base: FairlaneConfig
  readonly overlay: Overlay
}

/** One entry written by a change: a document, or `null` to delete the name. */
export interface ConfigWrite {
  readonly section: Section
  readonly name: string
  readonly doc: Record<string, unknown> | null
}

export type Source = 'file' | 'store'

/** The document that is in force for a name (Redis wins over the file), or undefined. */
export function entryOf(
  layers: Layers,
  section: Section,
  name: string,
): { readonly doc: unknown; readonly source: Source } | undefined {
  const stored = layers.overlay[section]
  if (stored.has(name)) {
    const doc = stored.get(name)
    return doc === null ? undefined : { doc, source: 'store' }
  }
  const fromFile: Record<string, unknown> = layers.base[section]
  return Object.hasOwn(fromFile, name) ? { doc: fromFile[name], source: 'file' } : undefined
}

export function sourceOf(overlay: Overlay, section: Section, name: string): Source {
  return overlay[section].has(name) ? 'store' : 'file'
}

/** The overlay after `writes`, at the same revision (the commit gives the new one). */
export function withWrites(overlay: Overlay, writes: readonly ConfigWrite[]): Overlay {
  const next = {
    workspaces: new Map(overlay.workspaces),
    targets: new Map(overlay.targets),
    routes: new Map(overlay.routes),
    customers: new Map(overlay.customers),
  }
  for (const write of writes) next[write.section].set(write.name, write.doc)
  return { ...overlay, ...next }
}

/**
 * The config a node runs: the file's, with each stored workspace and target replacing the
 * file's entry of the same name, validated exactly as a file is. The file's part was
 * resolved when it was loaded; only stored documents have their references resolved here,
 * against this node's environment.
 */
export function mergeLayers(layers: Layers, env: Env): ValidationResult {
  const referenceIssues: ConfigIssue[] = []
  const merged: Record<Section, Record<string, unknown>> = {
    workspaces: {},
    targets: {},
    routes: {},
    customers: {},
  }
  for (const section of SECTIONS) {
    const entries = new Map<string, unknown>(Object.entries(layers.base[section]))
    for (const [name, doc] of layers.overlay[section]) {
      if (doc === null) {
        entries.delete(name)
        continue
      }
      const issues: { path: (string | number)[]; message: string }[] = []
      entries.set(name, resolveReferences(doc, env, issues, [section, name]))
      for (const issue of issues)
        referenceIssues.push({ path: formatPath(issue.path), message: issue.message })
    }
    // fromEntries defines own properties, so no stored name can reach a prototype.
    merged[section] = Object.fromEntries(entries)
  }
  const result = validateConfig({ ...layers.base, ...merged })
  if (!referenceIssues.length) return result
  return { ok: false, issues: [...referenceIssues, ...(result.ok ? [] : result.issues)] }
}

/** Hash fields as Redis returns them (HGETALL's flat list) → documents by name. */
export function documentsOf(flat: readonly string[]): Map<string, unknown> {
  const docs = new Map<string, unknown>()
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const text = flat[i + 1] as string
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch {
      // Kept as text: validation then reports the entry by its path instead of a node
      // crashing on a value someone wrote by hand.
      doc = text
    }
    docs.set(flat[i] as string, doc)
  }
  return docs
}
