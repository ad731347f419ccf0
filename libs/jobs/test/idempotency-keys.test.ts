import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNats, type NatsServer } from '@fairlane/testing'
import { IdempotencyKeys } from '../src/idempotency-keys.ts'

let server: NatsServer
let nc: NatsConnection

beforeAll(async () => {
  server = await startNats({ jetstream: true })
  nc = await connect({ servers: server.url })
})

afterAll(async () => {
  await nc.close()
  await server.stop()
})

let bucketNo = 0
async function keys(now: () => number): Promise<IdempotencyKeys> {
  const kv = await new Kvm(nc).create(`keys-${++bucketNo}`, { history: 1 })
  return new IdempotencyKeys(kv, now)
}

const jobs = new Map<string, string>()
const find = async (id: string) => jobs.get(id)

describe('IdempotencyKeys', () => {
  it('the first submission takes a key; the next ones get its holder and job', async () => {
    const k = await keys(() => Date.now())
    jobs.set('a', 'job a')
    expect(await k.take('w', 'order-1', { id: 'a', hash: 'h1' }, find)).toBeUndefined()
    expect(await k.take('w', 'order-1', { id: 'b', hash: 'h2' }, find)).toEqual({
      holder: { id: 'a', hash: 'h1' },
      job: 'job a',
    })
    // Another workspace's same key is its own.
    expect(await k.take('v', 'order-1', { id: 'c', hash: 'h1' }, find)).toBeUndefined()
  })

  it('a key whose submission died before storing its job is taken over once it is stale', async () => {
    let now = Date.now()
    const k = await keys(() => now)
    expect(await k.take('w', 'order-2', { id: 'ghost', hash: 'h' }, find)).toBeUndefined()
    now += 6_000
    expect(await k.take('w', 'order-2', { id: 'd', hash: 'h' }, find)).toBeUndefined()
    jobs.set('d', 'job d')
    expect(await k.take('w', 'order-2', { id: 'e', hash: 'h' }, find)).toMatchObject({
      holder: { id: 'd' },
    })
  })

  it('a fresh key whose job is being stored is waited for, not taken over', async () => {
    const k = await keys(() => Date.now())
    expect(await k.take('w', 'order-3', { id: 'f', hash: 'h' }, find)).toBeUndefined()
    setTimeout(() => jobs.set('f', 'job f'), 300)
    expect(await k.take('w', 'order-3', { id: 'g', hash: 'h' }, find)).toMatchObject({
      holder: { id: 'f' },
      job: 'job f',
    })
  })
})
