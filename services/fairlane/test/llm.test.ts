import { performance } from 'node:perf_hooks'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startFakeOpenAi, type FakeOpenAi } from '@fairlane/testing'
import { hashKeySecret, startNode, type TestNode } from './node-harness.ts'

let openaiFake: FakeOpenAi
let localFake: FakeOpenAi
let node: TestNode

const metered = (url: string) => ({
  endpoints: [{ url }],
  allowPrivateAddresses: true,
  upstreamHeaders: { authorization: 'Bearer sk-upstream' },
  cost: { fromResponse: { json: 'usage.total_tokens' } },
  // Cents per million tokens, input and output.
  prices: { 'gpt-4o*': { input: 250, output: 1000 } },
})

/** A key of its own per test, so budgets do not leak between tests. */
const KEYS = [
  'team',
  'tokens',
  'stream',
  'gzip',
  'gzsse',
  'refused',
  'paced',
  'cents',
  'tcents',
  'tstream',
  'tplain',
  'policy',
  'other',
] as const
const secret = (id: (typeof KEYS)[number]) => `fl_test_${id}`
const CENTS_KEYS: ReadonlySet<string> = new Set(['cents', 'tcents', 'tstream', 'tplain'])

beforeAll(async () => {
  openaiFake = await startFakeOpenAi('openai')
  localFake = await startFakeOpenAi('local')
  const keys = KEYS.filter((id) => id !== 'other').map((id) => ({
    id,
    hash: hashKeySecret(secret(id)),
    ...(id === 'paced'
      ? { limits: { rate: { rps: 1, burst: 1 } } }
      : CENTS_KEYS.has(id)
        ? // 10 cents, refilling at a cent a day: a budget in cents.
          { limits: { unit: 'cents', rate: { rpm: 1 / 1440, burst: 10 } } }
        : id !== 'team' && id !== 'policy'
          ? { limits: { unit: 'cost', window: { limit: 600, seconds: 60 } } }
          : {}),
  }))
  node = await startNode({
    server: { maxBodyBytes: 100_000 },
    // A request over a limit is refused at once rather than queued, as a client sees a 429.
    tiers: { free: { priority: 0, maxWaitMs: 0 } },
    targets: { openai: metered(openaiFake.url), local: metered(localFake.url) },
    workspaces: {
      team: {
        targets: ['openai', 'local'],
        models: { 'gpt-*': 'openai', 'llama*': 'local' },
        keys,
      },
      other: {
        targets: ['openai'],
        models: { 'gpt-4o-mini': 'openai' },
        keys: [{ id: 'other', hash: hashKeySecret(secret('other')) }],
      },
    },
  })
})

afterAll(async () => {
  await node?.close()
  await openaiFake?.close()
  await localFake?.close()
})

function client(id: (typeof KEYS)[number], maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: `${node.proxyUrl}/v1`, apiKey: secret(id), maxRetries })
}

function chat(id: (typeof KEYS)[number], body: Record<string, unknown>, headers = {}) {
  return node.proxy('/v1/chat/completions', {
    method: 'POST',
    headers: {
      authorization: `Bearer ${secret(id)}`,
      'content-type': 'application/json',
      ...headers,
    },
    body: JSON.stringify(body),
  })
}

describe('one base URL, routed by model', () => {
  it('serves the openai client, the body reaching the model’s target byte for byte', async () => {
    const answer = await client('team').chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    })
    expect(answer.choices[0]?.message.content).toBe('Hello from openai')
    const seen = openaiFake.requests.at(-1)
    expect(seen?.url).toBe('/v1/chat/completions')
    // The upstream credential comes from the target; the Fairlane key never leaves.
    expect(seen?.headers['authorization']).toBe('Bearer sk-upstream')

    const odd = Buffer.from(
      '{ "messages" : [{"role":"user","content":"é ✓"}],\n "model":"gpt-4o"  }',
    )
    const response = await node.proxy('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${secret('team')}`, 'content-type': 'application/json' },
      body: odd,
    })
    expect(response.status).toBe(200)
    expect(openaiFake.requests.at(-1)?.body.equals(odd)).toBe(true)
  })

  it('sends each model to its own provider behind the same base URL', async () => {
    const api = client('team')
    const local = await api.chat.completions.create({
      model: 'llama3.1:8b',
      messages: [{ role: 'user', content: 'hi' }],
    })
    expect(local.choices[0]?.message.content).toBe('Hello from local')
    const embedded = await api.embeddings.create({ model: 'gpt-embed', input: 'x' })
    expect(embedded.data).toHaveLength(1)
    expect(openaiFake.requests.at(-1)?.url).toBe('/v1/embeddings')
  })

  it('lists the models of the caller’s workspace', async () => {
    const listed = []
    for await (const model of client('team').models.list()) listed.push([model.id, model.owned_by])
    expect(listed).toEqual([
      ['gpt-*', 'openai'],
      ['llama*', 'local'],
    ])
    const other = []
    for await (const model of client('other').models.list()) other.push(model.id)
    expect(other).toEqual(['gpt-4o-mini'])
  })

  it('refuses a model the workspace may not use: 403 in OpenAI’s error shape', async () => {
    const hits = openaiFake.requests.length
    const error = await client('other')
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError)
    const denied = error as InstanceType<typeof OpenAI.PermissionDeniedError>
    expect(denied.code).toBe('model_not_allowed')
    expect(denied.param).toBe('model')
    expect(denied.message).toContain('model "gpt-4o" is not available here')
    expect(denied.error).toMatchObject({ type: 'permission_error', requestId: expect.any(String) })
    expect(denied.headers.get('x-request-id')).toBe(
      (denied.error as { requestId: string }).requestId,
    )
    expect(openaiFake.requests.length).toBe(hits)
  })

  it('answers a wrong key and a body without a model in the same shape', async () => {
    const wrong = new OpenAI({ baseURL: `${node.proxyUrl}/v1`, apiKey: 'nope', maxRetries: 0 })
    const error = await wrong.models.list().catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('unauthenticated')

    const response = await chat('team', { messages: [] })
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/json')
    expect(await response.json()).toEqual({
      error: {
        message: 'Bad request: the request body must name a model ("model": "<name>")',
        type: 'invalid_request_error',
        code: 'bad_request',
        param: null,
        requestId: response.headers.get('x-request-id'),
      },
    })
  })

  it('answers one model by id, and a malformed or unknown id in the same shape', async () => {
    const auth = { authorization: `Bearer ${secret('team')}` }
    const one = await node.proxy('/v1/models/llama*', { headers: auth })
    expect(await one.json()).toEqual({
      id: 'llama*',
      object: 'model',
      created: 0,
      owned_by: 'local',
    })
    const bad = await node.proxy('/v1/models/%E0%A4%A', { headers: auth })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: { code: 'bad_request' } })
    const unknown = await node.proxy('/v1/models/o1', { headers: auth })
    expect(unknown.status).toBe(403)
    expect(await unknown.json()).toMatchObject({
      error: { code: 'model_not_allowed', param: 'model' },
    })
  })

  it('answers a body over maxBodyBytes 413 in the same shape, declared or streamed', async () => {
    const big = JSON.stringify({ model: 'gpt-4o', input: 'x'.repeat(150_000) })
    const declared = await chat('team', JSON.parse(big) as Record<string, unknown>)
    expect(declared.status).toBe(413)
    expect(await declared.json()).toMatchObject({
      error: { code: 'payload_too_large', type: 'invalid_request_error' },
    })
    const chunked = await node.proxy('/v1/embeddings', {
      method: 'POST',
      headers: { authorization: `Bearer ${secret('team')}`, 'content-type': 'application/json' },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect(await chunked.json()).toMatchObject({ error: { code: 'payload_too_large' } })
  })

  it('keeps problem+json everywhere else', async () => {
    const response = await node.proxy('/t/openai/v1/models', {
      headers: { authorization: 'Bearer nope' },
    })
    expect(response.status).toBe(401)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
  })
})

describe('token costs from real usage', () => {
  it('settles the estimate against the reported usage, so the budget buys what was used', async () => {
    openaiFake.usage = { prompt_tokens: 20, completion_tokens: 30 }
    // Each request reserves about 130 tokens (its size and max_tokens) and uses 50: of a
    // budget of 600 tokens, about 10 pass; with the estimate kept it would be 4, with
    // requests counted as 1 token a hundred.
    let passed = 0
    for (let i = 0; i < 20; i++) {
      const response = await chat('tokens', {
        model: 'gpt-4o',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'hi' }],
      })
      await response.arrayBuffer()
      if (response.status !== 200) {
        expect(response.status).toBe(429)
        break
      }
      passed++
    }
    expect(passed).toBeGreaterThanOrEqual(8)
    expect(passed).toBeLessThanOrEqual(11)
  })

  it('reads usage from a stream, asking for it and keeping that chunk from the client', async () => {
    openaiFake.usage = { prompt_tokens: 100, completion_tokens: 350 }
    const stream = await client('stream').chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    })
    const chunks = []
    for await (const part of stream) chunks.push(part)
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Hello from openai')
    // The client did not ask for usage: no usage-only chunk reaches it.
    expect(chunks.every((c) => c.choices.length === 1 && !c.usage)).toBe(true)
    const sent = JSON.parse(openaiFake.requests.at(-1)?.body.toString() ?? '{}') as {
      stream_options?: unknown
    }
    expect(sent.stream_options).toEqual({ include_usage: true })
    // 450 of 600 tokens used: a request reserving 200 more does not fit.
    const next = await chat('stream', { model: 'gpt-4o', max_tokens: 200, messages: [] })
    expect(next.status).toBe(429)
  })

  it('reads usage from compressed answers, which reach the client as they came', async () => {
    openaiFake.usage = { prompt_tokens: 100, completion_tokens: 350 }
    openaiFake.compress = true
    const gzip = { 'accept-encoding': 'gzip' }
    const big = { model: 'gpt-4o', max_tokens: 200, messages: [] }
    try {
      const response = await chat('gzip', { model: 'gpt-4o', messages: [] }, gzip)
      expect(response.headers.get('content-encoding')).toBe('gzip')
      // fetch decodes it: the client got the upstream's gzip body.
      expect(await response.json()).toMatchObject({ usage: { total_tokens: 450 } })
      expect((await chat('gzip', big, gzip)).status).toBe(429)

      // A stream whose client asked for usage itself is left as it is, compressed too.
      const asked = { stream: true, stream_options: { include_usage: true } }
      const stream = await chat('gzsse', { model: 'gpt-4o', messages: [], ...asked }, gzip)
      expect(stream.headers.get('content-encoding')).toBe('gzip')
      expect(await stream.text()).toContain('"total_tokens":450')
      expect((await chat('gzsse', big, gzip)).status).toBe(429)
    } finally {
      openaiFake.compress = false
    }
  })
})

describe('budgets in cents', () => {
  it('prices the reported usage per model and refuses once the budget is spent', async () => {
    // 10,000 input tokens at 250 and 2,000 output tokens at 1,000 cents a million: 4.5 cents.
    openaiFake.usage = { prompt_tokens: 10_000, completion_tokens: 2_000 }
    const statuses = []
    for (let i = 0; i < 5; i++) {
      const response = await chat('cents', { model: 'gpt-4o', messages: [] })
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    // 4.5 + 4.5 + (a fraction reserved, 4.5 charged) = 13.5 of 10: the fourth is refused.
    expect(statuses).toEqual([200, 200, 200, 429, 429])
    // A model without a price costs nothing in cents.
    const local = await chat('cents', { model: 'llama3', messages: [] })
    expect(local.status).toBe(200)
  })

  it('prices the /t/ form by the model its body names, streams included', async () => {
    openaiFake.usage = { prompt_tokens: 10_000, completion_tokens: 2_000 }
    const post = (id: (typeof KEYS)[number], body: Record<string, unknown>, type: string) =>
      node.proxy('/t/openai/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${secret(id)}`, 'content-type': type },
        body: JSON.stringify(body),
      })
    const statuses = async (
      id: (typeof KEYS)[number],
      body: Record<string, unknown>,
      type: string,
    ) => {
      const seen = []
      for (let i = 0; i < 5; i++) {
        const response = await post(id, body, type)
        await response.arrayBuffer()
        seen.push(response.status)
      }
      return seen
    }
    const json = 'application/json'
    // As on the front door: 4.5 cents a request, the fourth refused.
    expect(await statuses('tcents', { model: 'gpt-4o', messages: [] }, json)).toEqual([
      200, 200, 200, 429, 429,
    ])
    // A stream that did not ask for usage is asked for it, and settled to it.
    expect(
      await statuses('tstream', { model: 'gpt-4o', stream: true, messages: [] }, json),
    ).toEqual([200, 200, 200, 429, 429])
    expect(
      JSON.parse(openaiFake.requests.at(-1)?.body.toString() ?? '{}') as Record<string, unknown>,
    ).toMatchObject({ stream_options: { include_usage: true } })
    // A body not read as a model's (not declared JSON) is priced by the model its answer names.
    for (let i = 0; i < 3; i++) {
      const response = await post('tplain', { model: 'gpt-4o', messages: [] }, 'text/plain')
      await response.arrayBuffer()
      expect(response.status).toBe(200)
    }
    expect((await post('tplain', { model: 'gpt-4o', messages: [] }, json)).status).toBe(429)
  })

  it('holds a client to u=cents in Fairlane-RateLimit-Policy', async () => {
    openaiFake.usage = { prompt_tokens: 10_000, completion_tokens: 2_000 }
    const policy = { 'fairlane-ratelimit-policy': '5;w=86400;u=cents' }
    const first = await chat('policy', { model: 'gpt-4o', messages: [] }, policy)
    await first.arrayBuffer()
    expect(first.status).toBe(200)
    const second = await chat('policy', { model: 'gpt-4o', messages: [] }, policy)
    expect(second.status).toBe(429)
    expect(await second.json()).toMatchObject({ error: { code: 'rate_limited' } })
  })
})

describe('refusals the openai client understands', () => {
  it('gives RateLimitError Fairlane’s message, code and Retry-After', async () => {
    openaiFake.usage = { prompt_tokens: 100, completion_tokens: 500 }
    const api = client('refused')
    await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    const error = await api.chat.completions
      .create({ model: 'gpt-4o', max_tokens: 50, messages: [] })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const limited = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(limited.message).toMatch(
      /^429 Rate limit exceeded: key rate limit reached|^429 Rate limit exceeded: key/,
    )
    expect(limited.code).toBe('rate_limited')
    expect(limited.type).toBe('rate_limit_error')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(limited.headers.get('ratelimit-policy')).toBeTruthy()
  })

  it('lets the openai client retry after Retry-After, and then succeed', async () => {
    const api = client('paced', 2)
    const hits = openaiFake.requests.length
    await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    const started = performance.now()
    const second = await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    expect(second.choices[0]?.message.content).toBe('Hello from openai')
    // It waited for the lane (1 per second) instead of failing or hammering.
    expect(performance.now() - started).toBeGreaterThan(500)
    // The refused attempt never reached the upstream.
    expect(openaiFake.requests.length - hits).toBe(2)
  })
})
