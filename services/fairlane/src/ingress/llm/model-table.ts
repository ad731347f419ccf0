import type { FairlaneConfig, RouteConfig, TargetConfig, WorkspaceConfig } from '@fairlane/config'

/** One entry of a model map (a workspace's `models`, a target's `prices`). */
export interface ModelEntry<T> {
  /** The model name or pattern as configured (`gpt-4o*`). */
  readonly model: string
  readonly target: T
}

/**
 * A map keyed by model: an exact name first, then the longest matching pattern (`*` matches
 * any run of characters), so `gpt-4o-mini*` can go elsewhere than `gpt-*`. Built once per
 * config snapshot. A workspace's maps models to targets, a target's to prices.
 */
export class ModelTable<T = string> {
  readonly entries: readonly ModelEntry<T>[]
  readonly #exact = new Map<string, T>()
  readonly #patterns: { readonly regex: RegExp; readonly target: T }[] = []

  constructor(models: Readonly<Record<string, T>>) {
    const entries = Object.entries(models).map(([model, target]) => ({ model, target }))
    this.entries = entries
    const patterns: ModelEntry<T>[] = []
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

  /** The value for `model` (the target serving it, its price), or undefined. */
  targetOf(model: string): T | undefined {
    const exact = this.#exact.get(model)
    if (exact !== undefined) return exact
    for (const { regex, target } of this.#patterns) if (regex.test(model)) return target
    return undefined
  }
}

/** Who has a model map: a workspace, or an inbound route. */
type ModelOwner = WorkspaceConfig | RouteConfig

const tables = new WeakMap<ModelOwner, ModelTable>()

export function modelTableOf(owner: ModelOwner): ModelTable {
  let table = tables.get(owner)
  if (!table) {
    table = new ModelTable(owner.models)
    tables.set(owner, table)
  }
  return table
}

export function hasModels(owner: ModelOwner): boolean {
  return modelTableOf(owner).entries.length > 0
}

export type Price = TargetConfig['prices'][string]

const prices = new WeakMap<TargetConfig, ModelTable<Price>>()

export function priceTableOf(target: TargetConfig): ModelTable<Price> {
  let table = prices.get(target)
  if (!table) {
    table = new ModelTable(target.prices)
    prices.set(target, table)
  }
  return table
}

const routed = new WeakMap<FairlaneConfig, boolean>()

/** Whether any workspace of the snapshot routes by model: without one, /v1 is not taken. */
export function workspacesRouteByModel(config: FairlaneConfig): boolean {
  let any = routed.get(config)
  if (any === undefined) {
    any = Object.values(config.workspaces).some(hasModels)
    routed.set(config, any)
  }
  return any
}
