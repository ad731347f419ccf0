import type { KeyConfig, TargetConfig, WorkspaceConfig } from '@fairlane/config'
import { sourceOf, type Source } from '../store/overlay.ts'
import type { StoreView } from '../store/redis-config-store.ts'

/**
 * What the admin API shows of the running config: the values in force (defaults filled),
 * where each entry comes from, and never a secret — no key hash, no upstream credential.
 */

interface KeyView {
  readonly id: string
  readonly tier?: string
  readonly weight: number
  readonly limits?: KeyConfig['limits']
}

export type WorkspaceView = { readonly name: string; readonly source: Source } & Omit<
  WorkspaceConfig,
  'keys'
> & { readonly keys: readonly KeyView[] }

export type TargetView = { readonly name: string; readonly source: Source } & TargetConfig

const REDACTED = '[redacted]'

/**
 * A value that is one `${ENV}` reference, optionally after a scheme word (`Bearer ${KEY}`),
 * holds no secret itself. A `${VAR:-default}` could, so it is not shown.
 */
const ENV_REFERENCE = /^([A-Za-z][A-Za-z-]* )?\$\{[A-Za-z_][A-Za-z0-9_]*\}$/

function keyView(key: KeyConfig): KeyView {
  return {
    id: key.id,
    ...(key.tier === undefined ? {} : { tier: key.tier }),
    weight: key.weight,
    ...(key.limits === undefined ? {} : { limits: key.limits }),
  }
}

export function workspaceView(view: StoreView, name: string): WorkspaceView | undefined {
  if (!Object.hasOwn(view.config.workspaces, name)) return undefined
  const { keys, ...workspace } = view.config.workspaces[name] as WorkspaceConfig
  return {
    name,
    source: sourceOf(view.overlay, 'workspaces', name),
    ...workspace,
    keys: keys.map(keyView),
  }
}

/**
 * Upstream header values are resolved secrets in the running config. Shown instead: the
 * stored `${ENV}` reference where the value is one; `[redacted]` otherwise (a literal
 * value, or any value of a file target, whose unresolved text this node no longer has).
 */
export function targetView(view: StoreView, name: string): TargetView | undefined {
  if (!Object.hasOwn(view.config.targets, name)) return undefined
  const target = view.config.targets[name] as TargetConfig
  const stored = view.overlay.targets.get(name)
  const raw = recordOf(recordOf(stored)['upstreamHeaders'])
  const upstreamHeaders = Object.fromEntries(
    Object.keys(target.upstreamHeaders).map((header) => {
      const value = raw[header]
      return [header, typeof value === 'string' && ENV_REFERENCE.test(value) ? value : REDACTED]
    }),
  )
  return {
    name,
    source: sourceOf(view.overlay, 'targets', name),
    ...target,
    upstreamHeaders,
  }
}

export function workspaceViews(view: StoreView): WorkspaceView[] {
  return Object.keys(view.config.workspaces)
    .sort()
    .map((name) => workspaceView(view, name) as WorkspaceView)
}

export function targetViews(view: StoreView): TargetView[] {
  return Object.keys(view.config.targets)
    .sort()
    .map((name) => targetView(view, name) as TargetView)
}

function recordOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}
}
