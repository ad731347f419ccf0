import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startNatsRegions, startTcpRelay, type NatsRegions, type TcpRelay } from '@fairlane/testing'

let nats: NatsRegions | undefined
const clients: NatsConnection[] = []

beforeAll(async () => {
  nats = await startNatsRegions({ regions: ['a', 'b'] })
})

afterEach(async () => {
  await Promise.all(clients.splice(0).map((nc) => nc.close()))
})

afterAll(async () => {
  await nats?.stop()
})

function regions(): NatsRegions {
  if (!nats) throw new Error('the regions did not start')
  return nats
}

async function client(region: string): Promise<NatsConnection> {
  const nc = await connect({ servers: regions().region(region).url, ignoreClusterUpdates: true })
  clients.push(nc)
  return nc
}

async function answerFromA(subject: string): Promise<void> {
  const a = await client('a')
  a.subscribe(subject, {
    callback: (_, message) => {
      message.respond('from a')
    },
  })
  await a.flush()
}

describe('NATS regions', () => {
  it('puts one server per region, each with its own client URL', () => {
    const [a, b] = regions().regions
    expect([a?.name, b?.name]).toEqual(['a', 'b'])
    expect(a?.servers.map((server) => server.name)).toEqual(['a-0'])
    expect(a?.urls).toEqual([a?.url])
    expect(a?.url).not.toBe(b?.url)
    expect(() => regions().region('c')).toThrow('unknown NATS region "c" (regions: a, b)')
  })

  it('refuses a layout it cannot start', async () => {
    await expect(startNatsRegions({ regions: ['a'] })).rejects.toThrow('one region of one server')
    await expect(startNatsRegions({ regions: ['a', 'a'] })).rejects.toThrow('named twice')
    await expect(startNatsRegions({ regions: ['a b'] })).rejects.toThrow('letters, digits')
  })

  it('carries a request from region b to a responder in region a', async () => {
    await answerFromA('greet')
    const b = await client('b')
    expect((await b.request('greet', '', { timeout: 2_000 })).string()).toBe('from a')
  })

  it('serves a KV bucket created through region a to region b', async () => {
    const a = await client('a')
    const b = await client('b')
    const inA = await new Kvm(a).create('leases')
    await inA.put('shard.1', 'node-a')
    const inB = await new Kvm(b).open('leases')
    expect((await inB.get('shard.1'))?.string()).toBe('node-a')
    await inB.put('shard.2', 'node-b')
    expect((await inA.get('shard.2'))?.string()).toBe('node-b')
    await expect(inB.create('shard.1', 'node-b')).rejects.toThrow('wrong last sequence')
    // An R1 stream lives in the cluster of the server the creating client was connected to.
    const jsm = await jetstreamManager(b)
    expect((await jsm.streams.info('KV_leases')).cluster).toMatchObject({
      name: 'a',
      leader: 'a-0',
    })
  })

  it('answers again, with its store, after region a is killed and started', async () => {
    const [server] = regions().region('a').servers
    if (!server) throw new Error('region a has no server')
    await server.kill()
    await server.start()
    await regions().ready()
    await answerFromA('greet-again')
    const b = await client('b')
    expect((await b.request('greet-again', '', { timeout: 2_000 })).string()).toBe('from a')
    const inB = await new Kvm(b).open('leases')
    expect((await inB.get('shard.1'))?.string()).toBe('node-a')
  })
})

describe('NATS regions with a relay in front of each gateway', () => {
  it(
    'delays a request between regions by both relays and cuts it with them',
    { timeout: 60_000 },
    async () => {
      const relays: TcpRelay[] = []
      const apart = await startNatsRegions({
        regions: ['a', 'b'],
        gatewayVia: async ({ port }) => {
          const relay = await startTcpRelay({ target: { host: '127.0.0.1', port }, delayMs: 20 })
          relays.push(relay)
          return relay.port
        },
      })
      try {
        const a = await connect({ servers: apart.region('a').url, ignoreClusterUpdates: true })
        const b = await connect({ servers: apart.region('b').url, ignoreClusterUpdates: true })
        clients.push(a, b)
        a.subscribe('far', { callback: (_, message) => void message.respond('from a') })
        await a.flush()
        const ask = (timeout: number) =>
          b.request('far', '', { timeout }).then(
            (m) => m.string(),
            () => 'no answer',
          )
        // The interest of the subscription reaches region b a relay's delay later.
        await expect.poll(() => ask(1_000), { timeout: 10_000, interval: 100 }).toBe('from a')
        // b's gateway connection to a carries the request, a's to b the answer: 20 ms each.
        const started = performance.now()
        expect((await b.request('far', '', { timeout: 2_000 })).string()).toBe('from a')
        expect(performance.now() - started).toBeGreaterThanOrEqual(2 * 20 - 2)
        // Both gateways dial through the relays; nothing leads them around (gossip included).
        expect(relays.map((relay) => relay.connections)).toEqual([1, 1])

        for (const relay of relays) relay.cut()
        expect(await ask(1_000)).toBe('no answer')
        for (const relay of relays) relay.restore()
        await expect.poll(() => ask(1_000), { timeout: 20_000, interval: 200 }).toBe('from a')
        // Reconnected through the relays, not to an address learnt from the other side.
        expect(relays.map((relay) => relay.connections)).toEqual([1, 1])
      } finally {
        await apart.stop()
        await Promise.all(relays.map((relay) => relay.close()))
      }
    },
  )
})
