import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { startUpstream, type LoopbackUpstream } from '@fairlane/testing'
import { startNode, type TestNode } from './node-harness.ts'

let upstream: LoopbackUpstream
let node: TestNode
let example: Record<string, unknown>

beforeAll(async () => {
  upstream = await startUpstream()
  const text = await readFile(new URL('../../../examples/inbound.yaml', import.meta.url), 'utf8')
  example = parse(text) as Record<string, unknown>
  node = await startNode(example, { env: { API_URL: upstream.url } })
})

afterAll(async () => {
  await node.close()
  await upstream.close()
})

describe('examples/inbound.yaml', () => {
  it('has no Fairlane key anywhere', () => {
    expect(example['workspaces']).toBeUndefined()
  })

  it('puts cust_enterprise_demo in the reserved tier, under no route limit of its own', async () => {
    const response = await node.proxy('/v1/orders', {
      headers: { authorization: 'Bearer cust_enterprise_demo' },
    })
    expect(response.status).toBe(200)
    expect(upstream.requests.at(-1)?.headers).toMatchObject({
      authorization: 'Bearer cust_enterprise_demo',
      'x-fairlane-caller': 'c:enterprise',
      'x-fairlane-tier': 'reserved',
    })
  })

  it('limits every other token to 50 per second with a burst of 50, in the paid tier', async () => {
    const response = await node.proxy('/v1/orders', { headers: { authorization: 'Bearer t1' } })
    expect(response.status).toBe(200)
    expect(response.headers.get('ratelimit-policy')).toContain(';q=50;w=1')
    expect(upstream.requests.at(-1)?.headers['x-fairlane-tier']).toBe('paid')
  })

  it('gives a request without Authorization a lane per client /24 in the free tier', async () => {
    expect((await node.proxy('/anything')).status).toBe(200)
    expect(upstream.requests.at(-1)?.headers).toMatchObject({
      'x-fairlane-caller': 'ip:127.0.0.0/24',
      'x-fairlane-tier': 'free',
    })
  })
})
