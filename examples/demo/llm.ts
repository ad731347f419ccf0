/**
 * `npm run demo -- llm`: one OpenAI-compatible base URL (examples/llm.yaml) in front of a
 * fake OpenAI on loopback that reports 120 tokens per answer. The demo key fl_demo_llm may
 * spend 600 tokens a minute: a few answers pass, then the token budget refuses in OpenAI's
 * own error shape, which the SDKs turn into a RateLimitError.
 */
import { startFakeOpenAi } from '@fairlane/testing'
import { bold, dim, startFairlane } from './fairlane-process.ts'

interface ChatAnswer {
  usage?: { total_tokens?: number }
  error?: { message: string; code: string }
}

export async function llmDemo(): Promise<void> {
  const upstream = await startFakeOpenAi('fake-openai')
  upstream.usage = { prompt_tokens: 40, completion_tokens: 80 }
  const fairlane = await startFairlane('llm.yaml', {
    OPENAI_URL: upstream.url,
    OPENAI_ALLOW_LOOPBACK: 'true',
    OPENAI_API_KEY: 'sk-fake',
  })
  try {
    const baseURL = `${fairlane.proxyUrl}/v1`
    console.log(bold(`One base URL for the SDK: ${baseURL}, API key fl_demo_llm`))
    console.log(dim('Each answer reports 120 tokens; the key may spend 600 in any minute.\n'))
    const models = (await (
      await fetch(`${baseURL}/models`, { headers: { authorization: 'Bearer fl_demo_llm' } })
    ).json()) as { data: { id: string; owned_by: string }[] }
    console.log(
      `GET /v1/models → ${models.data.map((m) => `${m.id} (${m.owned_by})`).join(', ')}\n`,
    )
    for (let i = 1; i <= 7; i++) {
      const response = await fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer fl_demo_llm', 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gpt-4o-mini',
          max_tokens: 80,
          messages: [{ role: 'user', content: 'Say hello' }],
        }),
      })
      const answer = (await response.json()) as ChatAnswer
      const remaining = /r=(\d+)/.exec(response.headers.get('ratelimit') ?? '')?.[1] ?? '-'
      const said = answer.error
        ? `${answer.error.code}: ${answer.error.message} (Retry-After ${response.headers.get('retry-after')} s)`
        : `${answer.usage?.total_tokens ?? '?'} tokens used`
      console.log(
        `  request ${i}  ${response.status}  ${said}  ${dim(`tokens left at admission: ${remaining}`)}`,
      )
    }
    console.log(
      dim(
        '\nThe budget counts the usage the provider reported, not the estimate reserved at admission.',
      ),
    )
  } finally {
    await fairlane.stop()
    await upstream.close()
  }
}
