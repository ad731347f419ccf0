import { describe, expect, it } from 'vitest'
import { natsConnectOptions } from './nats-options.ts'

describe('natsConnectOptions', () => {
  it('names the node, lists every server and reconnects for as long as the node runs', () => {
    const options = natsConnectOptions('nats://a:4222,nats://b:4222', 'node-2')
    expect(options.servers).toEqual(['nats://a:4222', 'nats://b:4222'])
    expect(options.name).toBe('fairlane-node-2')
    expect(options.maxReconnectAttempts).toBe(-1)
  })

  it('builds no stack trace per request ahead of a failure that seldom comes', () => {
    expect(natsConnectOptions('nats://a:4222', 'node-1').noAsyncTraces).toBe(true)
  })
})
