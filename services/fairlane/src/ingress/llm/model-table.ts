import type { FairlaneConfig, WorkspaceConfig } from '@fairlane/config'

/** One entry of a workspace's `models`, as GET /v1/models lists it. */
export interface ModelEntry {
  /** The model name or pattern as configured (`gpt-4o*`). */
  readonly model: string
  readonly target: string
}

/**
 * A workspace's model-to-target map: an exact name first, then the longest matching pattern
 * (`*` matches any run of characters), so `gpt-4o-mini*` can go elsewhere than `gpt-*`.
 * Built once per config snapshot.
 */
export class ModelTable {
  readonly entries: readonly ModelEntry[]
  readonly #exact = new Map<string, string>()
  readonly #patterns: { readonly regex: RegExp; readonly target: string }[] = []

  constructor(models: Readonly<Record<string, string>>) {
    const entries = Object.entries(models).map(([model, target]) => ({ model, target }))
    this.entries = entries
    const patterns: { model: string; target: string }[] = []
    for (const entry of entries) {
      if (entry.model.includes('*')) patterns.push(entry)
      else this.#exact.set(entry.model, entry.target)
    }
    // Longest first; a stable sort keeps the written order among equals.
    patterns.sort((a, b) => b.model.length - a.model.length)
    for (const { model, target } of patterns) {
      const body = model
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
        .join('.*')
      this.#patterns.push({ regex: new RegExp(`^${body}$`), target })
    }
  }

  /** The target serving `model`, or undefined when the workspace may not use it. */
  targetOf(model: string): string | undefined {
    const exact = this.#exact.get(model)
    if (exact !== undefined) return exact
    for (const { regex, target } of this.#patterns) if (regex.test(model)) return target
    return undefined
  }
}

const tables = new WeakMap<WorkspaceConfig, ModelTable>()

export function modelTableOf(workspace: WorkspaceConfig): ModelTable {
  let table = tables.get(workspace)
  if (!table) {
    table = new ModelTable(workspace.models)
    tables.set(workspace, table)
  }
  return table
}

const routed = new WeakMap<FairlaneConfig, boolean>()

/** Whether any workspace of the snapshot routes by model: without one, /v1 is not taken. */
export function routesByModel(config: FairlaneConfig): boolean {
  let any = routed.get(config)
  if (any === undefined) {
    any = Object.values(config.workspaces).some((w) => Object.keys(w.models).length > 0)
    routed.set(config, any)
  }
  return any
}
