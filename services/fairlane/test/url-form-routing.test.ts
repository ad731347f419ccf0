import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  startFakeOpenAi,
  startUpstream,
  type FakeOpenAi,
  type LoopbackUpstream,
} from '@fairlane/testing'
import { bearer, hashKeySecret, startNode, stubResolver, type TestNode } from './node-harness.ts'

const KEY = 'fl_test_url_form'

let openai: FakeOpenAi
let echo: LoopbackUpstream
let node: TestNode

beforeAll(async () => {
  openai = await startFakeOpenAi('openai')
  echo = await startUpstream()
  node = await startNode(
    {
      logging: { level: 'warn' },
      jobs: { dataDir: await mkdtemp(join(tmpdir(), 'fairlane-url-form-')) },
      destinations: { timeouts: { connectMs: 300 } },
      targets: {
        openai: { endpoints: [{ url: openai.url }], allowPrivateAddresses: true },
        echo: { endpoints: [{ url: echo.url }], allowPrivateAddresses: true },
      },
      workspaces: {
        team: {
          targets: ['openai', 'echo'],
          models: { 'gpt-*': 'openai' },
          hosts: ['partner.example.com'],
          keys: [{ id: 'k', hash: hashKeySecret(KEY) }],
        },
      },
    },
    // Public and unreachable from here: the URL form shows as a forward-stage failure.
    { resolve: stubResolver({ 'partner.example.com': ['11.0.0.1'] }) },
  )
})

afterAll(async () => {
  await node?.close()
  await openai?.close()
  await echo?.close()
})

/** A request as the clients send the URL form: on the absolute URL's own path. */
function urlForm(path: string, init: { method?: string; body?: string } = {}) {
  return node.proxy(path, {
    ...init,
    headers: {
      ...bearer(KEY),
      'content-type': 'application/json',
      'x-fairlane-url': `https://partner.example.com${path}`,
    },
  })
}

/** The answer of a request that went to partner.example.com (and could not reach it). */
async function expectUrlForm(response: Response): Promise<void> {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(await response.json()).toMatchObject({ stage: 'forward' })
  expect([502, 504]).toContain(response.status)
}

describe('a request with X-Fairlane-Url goes to that URL whatever its path', () => {
  it('is not taken by the jobs API', async () => {
    const job = { request: { method: 'GET', target: 'echo', path: '/x' } }
    await expectUrlForm(await urlForm('/v1/jobs', { method: 'POST', body: JSON.stringify(job) }))
    await expectUrlForm(await urlForm('/v1/jobs'))
    const listed = await node.proxy('/v1/jobs', { headers: bearer(KEY) })
    expect(await listed.json()).toEqual({ jobs: [] })
  })

  it('is not taken by the OpenAI front door', async () => {
    const body = JSON.stringify({ model: 'gpt-4o', messages: [] })
    await expectUrlForm(await urlForm('/v1/chat/completions', { method: 'POST', body }))
    await expectUrlForm(await urlForm('/v1/models'))
    expect(openai.requests).toHaveLength(0)
    // Without the header both are the front door's, as before.
    const models = await node.proxy('/v1/models', { headers: bearer(KEY) })
    expect(await models.json()).toMatchObject({ object: 'list' })
  })

  it('still leaves /t/<target> paths to their target, the header ignored', async () => {
    const response = await urlForm('/t/echo/hello')
    expect(response.status).toBe(200)
    expect(echo.requests.at(-1)?.url).toBe('/hello')
    expect(echo.requests.at(-1)?.headers['x-fairlane-url']).toBeUndefined()
  })
})
