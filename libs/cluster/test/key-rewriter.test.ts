import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyRewriter } from '@fairlane/cluster'
import { startNats, type NatsServer } from '@fairlane/testing'

let nats: NatsServer
let nc: NatsConnection
const rewriters: KeyRewriter[] = []

beforeAll(async () => {
  nats = await startNats({ jetstream: true })
  nc = await connect({ servers: nats.url })
})

afterAll(async () => {
  for (const rewriter of rewriters) rewriter.close()
  await nc.close()
  await nats.stop()
})

function rewriterOf(bucket: string, timeoutMs?: number): KeyRewriter {
  const rewriter = new KeyRewriter(nc, bucket, timeoutMs)
  rewriters.push(rewriter)
  return rewriter
}

describe('KeyRewriter', () => {
  it('rewrites a key at its last revision, as KV update does, and refuses a stale one', async () => {
    const kv = await new Kvm(nc).create('rewrites', { history: 1 })
    const first = await kv.create('shard.1', 'node-a')
    const rewriter = rewriterOf('rewrites')
    const second = await rewriter.rewrite('shard.1', 'node-a', first)
    expect(second).toBeGreaterThan(first)
    expect((await kv.get('shard.1'))?.string()).toBe('node-a')
    // Another node took the key meanwhile: the old revision no longer holds.
    const taken = await kv.update('shard.1', 'node-b', second)
    await expect(rewriter.rewrite('shard.1', 'node-a', second)).rejects.toThrow(
      /wrong last sequence/,
    )
    expect((await kv.get('shard.1'))?.revision).toBe(taken)
    // Gone (expired or deleted): nothing to rewrite either.
    await kv.purge('shard.1')
    await expect(rewriter.rewrite('shard.1', 'node-a', taken)).rejects.toThrow(
      /wrong last sequence/,
    )
  })

  it('answers many rewrites out at once, each with its own revision', async () => {
    const kv = await new Kvm(nc).create('many', { history: 1 })
    const revisions = await Promise.all(
      Array.from({ length: 20 }, (_, i) => kv.create(`shard.${i}`, 'node-a')),
    )
    const rewriter = rewriterOf('many')
    const rewritten = await Promise.all(
      revisions.map((revision, i) => rewriter.rewrite(`shard.${i}`, 'node-a', revision)),
    )
    for (const [i, revision] of rewritten.entries())
      expect((await kv.get(`shard.${i}`))?.revision).toBe(revision)
  })

  it('refuses at once when nothing stores the bucket, and gives up on a write nobody answers', async () => {
    await expect(rewriterOf('no-such-bucket').rewrite('shard.1', 'node-a', 1)).rejects.toThrow(
      /no responders/,
    )
    // A listener that never answers, where the bucket's stream would be.
    const silent = await connect({ servers: nats.url })
    silent.subscribe('$KV.silent.>', { callback: () => undefined })
    await silent.flush()
    await expect(rewriterOf('silent', 300).rewrite('shard.1', 'node-a', 1)).rejects.toThrow(
      /no answer within 300 ms/,
    )
    await silent.close()
  })
})
