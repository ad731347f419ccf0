import type {
  CustomerConfig,
  KeyConfig,
  RouteConfig,
  TargetConfig,
  WorkspaceConfig,
} from '@fairlane/config'
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

export type RouteView = { readonly name: string; readonly source: Source } & RouteConfig

export type CustomerView = { readonly name: string; readonly source: Source } & CustomerConfig

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
  const { keys, webhookSecrets, ...workspace } = view.config.workspaces[name] as WorkspaceConfig
  // Webhook secrets are resolved secrets too: shown like upstream header values.
  const stored = recordOf(view.overlay.workspaces.get(name))['webhookSecrets']
  return {
    name,
    source: sourceOf(view.overlay, 'workspaces', name),
    ...workspace,
    keys: keys.map(keyView),
    webhookSecrets: webhookSecrets.map((_, i) => {
      const raw = Array.isArray(stored) ? (stored[i] as unknown) : undefined
      return typeof raw === 'string' && ENV_REFERENCE.test(raw) ? raw : REDACTED
    }),
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

/** An HS256 secret is shown like an upstream header: its stored `${ENV}` reference, or `[redacted]`. */
export function routeView(view: StoreView, name: string): RouteView | undefined {
  if (!Object.hasOwn(view.config.routes, name)) return undefined
  const route = view.config.routes[name] as RouteConfig
  const jwt = route.callers.jwt
  const callers =
    jwt?.secret === undefined
      ? route.callers
      : {
          ...route.callers,
          jwt: { ...jwt, secret: shownSecret(view.overlay.routes.get(name)) },
        }
  return { name, source: sourceOf(view.overlay, 'routes', name), ...route, callers }
}

function shownSecret(stored: unknown): string {
  const secret = recordOf(recordOf(recordOf(stored)['callers'])['jwt'])['secret']
  return typeof secret === 'string' && ENV_REFERENCE.test(secret) ? secret : REDACTED
}

/** A customer's credential hash is not shown, like a key's: only that it has one. */
export function customerView(view: StoreView, name: string): CustomerView | undefined {
  if (!Object.hasOwn(view.config.customers, name)) return undefined
  const customer = view.config.customers[name] as CustomerConfig
  return {
    name,
    source: sourceOf(view.overlay, 'customers', name),
    ...customer,
    ...(customer.credential === undefined ? {} : { credential: REDACTED }),
  }
}

export function routeViews(view: StoreView): RouteView[] {
  return Object.keys(view.config.routes)
    .sort()
    .map((name) => routeView(view, name) as RouteView)
}

export function customerViews(view: StoreView): CustomerView[] {
  return Object.keys(view.config.customers)
    .sort()
    .map((name) => customerView(view, name) as CustomerView)
}

function recordOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {}
}
