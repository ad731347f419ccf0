import { setTimeout as sleep } from 'node:timers/promises'
import type { NatsConnection } from '@nats-io/transport-node'
import { Kvm, type KV } from '@nats-io/kv'

export const LEASE_BUCKET = 'fairlane-shard-leases'

/**
 * The KV bucket of shard leases, created by the first node and opened by the others. Its
 * max age is the lease TTL: a key not rewritten in time disappears for others to take.
 */
export async function openLeaseBucket(
  nc: NatsConnection,
  ttlMs: number,
  waitMs = 20_000,
): Promise<KV> {
  const kvm = new Kvm(nc)
  const giveUpAt = Date.now() + waitMs
  for (;;) {
    try {
      return await kvm.create(LEASE_BUCKET, { ttl: ttlMs, history: 1 })
    } catch (err) {
      // Created by another node with other settings (a different TTL): use it as it is; the
      // leases then follow that node's TTL until the bucket is recreated.
      if (err instanceof Error && /already in use|exists/i.test(err.message)) {
        return kvm.open(LEASE_BUCKET)
      }
      // JetStream elects its meta leader a few seconds after the servers start.
      if (Date.now() > giveUpAt) throw err
      await sleep(250)
    }
  }
}
