import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'

/** Token counts the fake reports for every answer. */
export interface FakeUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
}

/** What the fake saw of one request: the body byte for byte. */
export interface FakeOpenAiRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/**
 * An OpenAI-compatible API on loopback: chat completions (whole, or streamed as server-sent
 * events with the usage chunk when `stream_options.include_usage` asks), completions and
 * embeddings, each reporting `usage`; gzip when the client accepts it and `compress` is on.
 */
export interface FakeOpenAi {
  readonly url: string
  /** Every request received, oldest first. */
  readonly requests: FakeOpenAiRequest[]
  /** Reported for every answer; change it between requests. */
  usage: FakeUsage
  /** Gzip answers for clients that send Accept-Encoding: gzip. */
  compress: boolean
  /** Says which upstream answered, as `owned_by` and the X-Fake-Name header. */
  readonly name: string
  close(): Promise<void>
}

function usageOf(usage: FakeUsage): Record<string, number> {
  return { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens }
}

function chunk(model: string, delta: Record<string, unknown>, finish: string | null): string {
  const body = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  }
  return `data: ${JSON.stringify(body)}\n\n`
}

export async function startFakeOpenAi(name = 'fake'): Promise<FakeOpenAi> {
  const requests: FakeOpenAiRequest[] = []
  const state = { usage: { prompt_tokens: 10, completion_tokens: 20 }, compress: false }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      let parsed: Record<string, unknown>
      try {
        parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end('{"error":{"message":"bad json","type":"invalid_request_error"}}')
        return
      }
      const model = String(parsed['model'] ?? '')
      const gzip = state.compress && String(req.headers['accept-encoding']).includes('gzip')
      const send = (type: string, text: string): void => {
        const headers: Record<string, string> = { 'content-type': type, 'x-fake-name': name }
        if (gzip) headers['content-encoding'] = 'gzip'
        res.writeHead(200, headers)
        res.end(gzip ? gzipSync(text) : text)
      }
      const usage = usageOf(state.usage)
      if (req.url?.startsWith('/v1/embeddings')) {
        send(
          'application/json',
          JSON.stringify({
            object: 'list',
            model,
            data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
            usage: { prompt_tokens: usage['prompt_tokens'], total_tokens: usage['total_tokens'] },
          }),
        )
        return
      }
      if (parsed['stream'] === true) {
        const options = parsed['stream_options'] as { include_usage?: boolean } | undefined
        let text =
          chunk(model, { role: 'assistant', content: '' }, null) +
          chunk(model, { content: `Hello from ${name}` }, null) +
          chunk(model, {}, 'stop')
        if (options?.include_usage) {
          const last = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1, model }
          text += `data: ${JSON.stringify({ ...last, choices: [], usage })}\n\n`
        }
        text += 'data: [DONE]\n\n'
        send('text/event-stream', text)
        return
      }
      send(
        'application/json',
        JSON.stringify({
          id: 'chatcmpl-fake',
          object: 'chat.completion',
          created: 1,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: `Hello from ${name}` },
              finish_reason: 'stop',
            },
          ],
          usage,
        }),
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    name,
    get usage() {
      return state.usage
    },
    set usage(usage: FakeUsage) {
      state.usage = usage
    },
    get compress() {
      return state.compress
    },
    set compress(on: boolean) {
      state.compress = on
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
