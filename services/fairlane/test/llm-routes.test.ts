import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAi, type FakeOpenAi } from '@fairlane/testing'
import { startNode, type TestNode } from './node-harness.ts'

let openaiFake: FakeOpenAi
let localFake: FakeOpenAi
let node: TestNode

const target = (url: string) => ({
  endpoints: [{ url }],
  allowPrivateAddresses: true,
  upstreamHeaders: { authorization: 'Bearer sk-provider' },
  cost: { fromResponse: { json: 'usage.total_tokens' } },
})

beforeAll(async () => {
  openaiFake = await startFakeOpenAi('openai')
  localFake = await startFakeOpenAi('local')
  node = await startNode({
    tiers: { free: { priority: 0, maxWaitMs: 0 } },
    targets: {
      openai: target(openaiFake.url),
      local: target(localFake.url),
      // Cents per million tokens, input and output.
      priced: { ...target(openaiFake.url), prices: { 'gpt-4o*': { input: 250, output: 1000 } } },
    },
    routes: {
      // The operator's own route to a priced target, without models: 10 cents per customer.
      plain: {
        pathPrefix: '/plain',
        target: 'priced',
        callers: { header: 'authorization' },
        limits: { unit: 'cents', rate: { rpm: 1 / 1440, burst: 10 } },
      },
      gateway: {
        pathPrefix: '/v1',
        target: 'openai',
        models: { 'gpt-*': 'openai', 'llama*': 'local' },
        // The customer's own token is its lane; each may spend 600 tokens a minute.
        callers: { header: 'authorization' },
        limits: { unit: 'cost', window: { limit: 600, seconds: 60 } },
      },
    },
  })
})

afterAll(async () => {
  await node?.close()
  await openaiFake?.close()
  await localFake?.close()
})

const client = (token: string) =>
  new OpenAI({ baseURL: `${node.proxyUrl}/v1`, apiKey: token, maxRetries: 0 })

describe('an inbound route routed by model (no Fairlane key)', () => {
  it('sends each model to its target, with the provider key instead of the customer’s', async () => {
    const api = client('cust-a')
    const gpt = await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    expect(gpt.choices[0]?.message.content).toBe('Hello from openai')
    expect(openaiFake.requests.at(-1)?.headers['authorization']).toBe('Bearer sk-provider')
    const llama = await api.chat.completions.create({ model: 'llama3', messages: [] })
    expect(llama.choices[0]?.message.content).toBe('Hello from local')
    const listed = (await api.models.list()).data.map((m) => m.id)
    expect(listed).toEqual(['gpt-*', 'llama*'])
  })

  it('refuses other models in OpenAI’s shape, and sends other paths to the route’s target', async () => {
    const error = await client('cust-a')
      .chat.completions.create({ model: 'o1', messages: [] })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError)
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_allowed')
    const other = await node.proxy('/v1/files', { headers: { authorization: 'Bearer cust-a' } })
    expect(other.status).toBe(200)
    expect(openaiFake.requests.at(-1)?.url).toBe('/v1/files')
  })

  it('holds each customer to its token budget, by real usage', async () => {
    openaiFake.usage = { prompt_tokens: 100, completion_tokens: 350 }
    const api = client('cust-b')
    await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    const error = await api.chat.completions
      .create({ model: 'gpt-4o', max_tokens: 200, messages: [] })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    // Another customer has its own lane and budget.
    const other = await client('cust-c').chat.completions.create({ model: 'gpt-4o', messages: [] })
    expect(other.choices).toHaveLength(1)
  })
})

describe('an inbound route without models to a target with prices', () => {
  it('prices each request by the model its body names, as the front door does', async () => {
    // 10,000 input tokens at 250 and 2,000 output tokens at 1,000 cents a million: 4.5 cents.
    openaiFake.usage = { prompt_tokens: 10_000, completion_tokens: 2_000 }
    const statuses = []
    for (let i = 0; i < 5; i++) {
      const response = await node.proxy('/plain/chat/completions', {
        method: 'POST',
        headers: { authorization: 'Bearer cust-d', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [] }),
      })
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429])
    expect(openaiFake.requests.at(-1)?.url).toBe('/plain/chat/completions')
  })
})
