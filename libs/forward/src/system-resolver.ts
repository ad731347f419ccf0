import { lookup } from 'node:dns/promises'
import { networkInterfaces } from 'node:os'
import type { Resolve, ResolvedAddress } from './destination-policy.ts'

interface CacheEntry {
  readonly expiresAt: number
  readonly addresses: Promise<readonly ResolvedAddress[]>
}

/** How long the system resolver keeps an answer: also the longest a checked address may be reused. */
export const SYSTEM_RESOLVER_TTL_MS = 5_000

/**
 * The operating system's resolver (getaddrinfo, so /etc/hosts and search domains apply as
 * for any local program) behind a short TTL cache. The cache only spares getaddrinfo's
 * thread pool: every request still resolves once and connects to the address it checked.
 * Concurrent lookups of one name share a single query; failures are not cached.
 */
export function systemResolver(options: { ttlMs?: number; maxEntries?: number } = {}): Resolve {
  const ttlMs = options.ttlMs ?? SYSTEM_RESOLVER_TTL_MS
  const maxEntries = options.maxEntries ?? 10_000
  const cache = new Map<string, CacheEntry>()

  return (hostname) => {
    const now = performance.now()
    const hit = cache.get(hostname)
    if (hit && hit.expiresAt > now) return hit.addresses
    if (hit) cache.delete(hostname)

    const addresses = lookup(hostname, { all: true, verbatim: true }).then((records) =>
      records.map((r): ResolvedAddress => ({ address: r.address, family: r.family === 6 ? 6 : 4 })),
    )
    if (ttlMs > 0 && maxEntries > 0) {
      // Map keeps insertion order, so the first key is the oldest entry.
      while (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value
        if (oldest === undefined) break
        cache.delete(oldest)
      }
      cache.set(hostname, { expiresAt: now + ttlMs, addresses })
      addresses.catch(() => {
        if (cache.get(hostname)?.addresses === addresses) cache.delete(hostname)
      })
    }
    return addresses
  }
}

/** Every address of this host's interfaces, loopback included: what a wildcard listener answers on. */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).map((info) => info.address),
  )
}
