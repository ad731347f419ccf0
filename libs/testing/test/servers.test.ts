import { afterAll, describe, expect, it } from 'vitest'
import {
  startNats,
  startRedis,
  freePort,
  tcpAnswers,
  type NatsServer,
  type RedisServer,
} from '@fairlane/testing'

const started: Array<RedisServer | NatsServer> = []
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()))
})

describe('server launchers', () => {
  it('starts redis-server on a free port, and brings it back after a stop', async () => {
    const redis = await startRedis()
    started.push(redis)
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(true)
    await redis.stop()
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(false)
    await redis.start()
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(true)
  })

  it('starts nats-server with JetStream on a free port, and kills it hard', async () => {
    const nats = await startNats()
    started.push(nats)
    expect(await tcpAnswers(nats.port, '', '"jetstream":true')).toBe(true)
    await nats.kill()
    expect(await tcpAnswers(nats.port, '', 'INFO')).toBe(false)
  })

  it('freezes a server (open socket, no answer) and thaws it; starts one on a port chosen before', async () => {
    const port = await freePort()
    const redis = await startRedis({ port })
    started.push(redis)
    expect(redis.url).toBe(`redis://127.0.0.1:${port}`)
    redis.freeze()
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(false)
    redis.thaw()
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(true)
    redis.freeze()
    // A frozen server still stops.
    await redis.stop()
    expect(await tcpAnswers(redis.port, 'PING\r\n', '+PONG')).toBe(false)
  })
})
