import { readFile } from 'node:fs/promises'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { startFakeOpenAi, type FakeOpenAi } from '@fairlane/testing'
import { startNode, type TestNode } from './node-harness.ts'

let upstream: FakeOpenAi
let node: TestNode

beforeAll(async () => {
  upstream = await startFakeOpenAi('openai')
  const text = await readFile(new URL('../../../examples/llm.yaml', import.meta.url), 'utf8')
  node = await startNode(parse(text) as Record<string, unknown>, {
    env: { OPENAI_URL: upstream.url, OPENAI_ALLOW_LOOPBACK: 'true', OPENAI_API_KEY: 'sk-test' },
  })
})

afterAll(async () => {
  await node?.close()
  await upstream?.close()
})

describe('examples/llm.yaml', () => {
  it('lets fl_demo_llm spend 600 tokens of real usage a minute, whatever the request count', async () => {
    const api = new OpenAI({ baseURL: `${node.proxyUrl}/v1`, apiKey: 'fl_demo_llm', maxRetries: 0 })
    expect((await api.models.list()).data.map((m) => m.id)).toEqual(['gpt-*'])
    // Cheap answers: many requests pass, no request count refuses them.
    upstream.usage = { prompt_tokens: 2, completion_tokens: 3 }
    for (let i = 0; i < 30; i++)
      await api.chat.completions.create({ model: 'gpt-4o-mini', messages: [] })
    expect(upstream.requests.at(-1)?.headers['authorization']).toBe('Bearer sk-test')
    // Expensive answers: the token budget refuses.
    upstream.usage = { prompt_tokens: 100, completion_tokens: 150 }
    await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    await api.chat.completions.create({ model: 'gpt-4o', messages: [] })
    const error = await api.chat.completions
      .create({ model: 'gpt-4o', max_tokens: 100, messages: [] })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).message).toContain(
      'Rate limit exceeded',
    )
  })
})
