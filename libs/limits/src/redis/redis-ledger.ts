import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { RateLimitView } from '@fairlane/protocol'
import type { Decision, Lease, Ledger, ScopeLimit } from '../ledger.ts'
import type { Grant, ReserveRequest, Reserver } from '../shared/shared-allowance.ts'
import { LuaScript } from './lua-script.ts'

const script = (name: string) => new LuaScript(new URL(`./scripts/${name}.lua`, import.meta.url))

const acquireScript = script('acquire')
const releaseScript = script('release')
const renewScript = script('renew')
const debitScript = script('debit')
const reserveScript = script('reserve-3')
const refundScript = script('refund-2')
const renewSlotsScript = script('renew-slots-1')

export interface RedisLedgerOptions {
  readonly redis: Redis
  /** Prefix of every key, so several Fairlane clusters can share one Redis. */
  readonly prefix?: string
  /** A concurrency slot not renewed within this time is freed (its node died). */
  readonly leaseTtlMs?: number
}

/**
 * The ledger of scopes shared between actors: one Lua script per decision, atomic, on Redis's
 * own clock, so every node spends the same budget exactly once. Keys of one scope share a
 * hash tag; a decision spans scopes, so it needs one Redis (with replicas), not Redis Cluster.
 */
export class RedisLedger implements Ledger, Reserver {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #leaseTtlMs: number
  readonly #held = new Map<string, readonly string[]>()
  readonly #renewer: NodeJS.Timeout

  constructor(options: RedisLedgerOptions) {
    this.#redis = options.redis
    this.#prefix = options.prefix ?? 'fairlane:'
    this.#leaseTtlMs = options.leaseTtlMs ?? 30_000
    // Renew three times per TTL, so a slow Redis round trip never lets a live lease lapse.
    this.#renewer = setInterval(() => void this.#renewAll(), Math.max(50, this.#leaseTtlMs / 3))
    this.#renewer.unref()
  }

  /** Stops renewing; leases still held then expire after their TTL. */
  close(): void {
    clearInterval(this.#renewer)
  }

  #key(scope: ScopeLimit, part: 'gcra' | 'win' | 'conc'): string {
    return `${this.#prefix}{${scope.id}}:${part}`
  }

  async acquire(scopes: readonly ScopeLimit[], cost: number): Promise<Decision> {
    const leaseId = randomUUID()
    const keys: string[] = []
    const args: (string | number)[] = [cost, leaseId, this.#leaseTtlMs, scopes.length]
    for (const scope of scopes) {
      keys.push(this.#key(scope, 'gcra'), this.#key(scope, 'win'), this.#key(scope, 'conc'))
      args.push(scope.unit === 'request' ? 1 : cost, ...limitArgs(scope), 0)
    }
    const reply = (await acquireScript.run(this.#redis, keys, args)) as (number | string)[]
    const views = viewsOf(scopes, reply.slice(4))
    if (Number(reply[0]) !== 1) {
      const refused = scopes[Number(reply[1]) - 1] as ScopeLimit
      const reason = Number(reply[3])
      return {
        allowed: false,
        refusedBy: refused.kind,
        reason: reason === 2 ? 'concurrency' : 'rate',
        ...(reason === 3 ? { impossible: true } : {}),
        retryAfterMs: Math.max(0, Number(reply[2])),
        views,
      }
    }
    const leaseKeys = scopes
      .filter((s) => s.concurrency !== undefined)
      .map((s) => this.#key(s, 'conc'))
    return { allowed: true, lease: this.#lease(leaseId, leaseKeys), views }
  }

  async debit(scopes: readonly ScopeLimit[], cost: number): Promise<void> {
    const charged = scopes.filter((s) => s.unit !== 'request' && (s.rate || s.window))
    if (cost <= 0 || charged.length === 0) return
    const keys: string[] = []
    const args: (string | number)[] = [cost, randomUUID(), charged.length]
    for (const scope of charged) {
      keys.push(this.#key(scope, 'gcra'), this.#key(scope, 'win'))
      args.push(scope.rate?.limit ?? 0, scope.rate?.periodMs ?? 0, scope.window?.windowMs ?? 0)
    }
    await debitScript.run(this.#redis, keys, args)
  }

  /** One round trip: a batch of a shared scope's budget for an actor to spend locally. */
  async reserve(scope: ScopeLimit, want: ReserveRequest): Promise<Grant> {
    const holder = randomUUID()
    const reply = (await reserveScript.run(
      this.#redis,
      [this.#key(scope, 'gcra'), this.#key(scope, 'win'), this.#key(scope, 'conc')],
      [want.units, want.slots, ...limitArgs(scope), holder, this.#leaseTtlMs],
    )) as string[]
    const [units, retryAfterMs, slots, remaining, resetMs] = reply.map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ]
    return {
      units,
      retryAfterMs,
      slots: Array.from({ length: slots }, (_, i) => `${holder}:${i + 1}`),
      remaining,
      resetMs,
    }
  }

  async refund(scope: ScopeLimit, units: number, slots: readonly string[]): Promise<void> {
    await refundScript.run(
      this.#redis,
      [this.#key(scope, 'gcra'), this.#key(scope, 'conc')],
      [units, scope.rate?.limit ?? 0, scope.rate?.periodMs ?? 0, ...slots],
    )
  }

  async renew(scope: ScopeLimit, slots: readonly string[]): Promise<readonly string[]> {
    if (slots.length === 0) return []
    return (await renewSlotsScript.run(
      this.#redis,
      [this.#key(scope, 'conc')],
      [this.#leaseTtlMs, ...slots],
    )) as string[]
  }

  async ping(): Promise<void> {
    await this.#redis.ping()
  }

  #lease(leaseId: string, keys: readonly string[]): Lease {
    if (keys.length === 0) return { release() {} }
    this.#held.set(leaseId, keys)
    return {
      release: () => {
        if (!this.#held.delete(leaseId)) return
        // A failed release is not lost: the lease expires with its TTL.
        releaseScript.run(this.#redis, keys, [leaseId]).catch(() => undefined)
      },
    }
  }

  async #renewAll(): Promise<void> {
    const pipeline = [...this.#held].map(([leaseId, keys]) =>
      renewScript.run(this.#redis, keys, [leaseId, this.#leaseTtlMs]).catch(() => undefined),
    )
    await Promise.all(pipeline)
  }
}

/** A scope's limits as the scripts take them, 0 where it has none. */
function limitArgs(scope: ScopeLimit): number[] {
  return [
    scope.rate?.limit ?? 0,
    scope.rate?.periodMs ?? 0,
    scope.rate?.burst ?? 0,
    scope.window?.limit ?? 0,
    scope.window?.windowMs ?? 0,
    scope.concurrency ?? 0,
  ]
}

function viewsOf(
  scopes: readonly ScopeLimit[],
  numbers: readonly (number | string)[],
): RateLimitView[] {
  const views: RateLimitView[] = []
  scopes.forEach((scope, i) => {
    const [rateRemaining, rateReset, windowRemaining, windowReset] = numbers
      .slice(i * 4, i * 4 + 4)
      .map(Number) as [number, number, number, number]
    if (scope.rate) {
      views.push({
        name: scope.kind,
        quota: scope.rate.limit,
        windowSeconds: scope.rate.periodMs / 1000,
        remaining: Math.max(0, rateRemaining),
        resetMs: Math.max(0, rateReset),
      })
    }
    if (scope.window) {
      views.push({
        name: scope.kind,
        quota: scope.window.limit,
        windowSeconds: scope.window.windowMs / 1000,
        remaining: Math.max(0, windowRemaining),
        resetMs: Math.max(0, windowReset),
      })
    }
  })
  return views
}
