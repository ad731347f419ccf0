import { Readable } from 'node:stream'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import type { TargetConfig } from '@fairlane/config'
import { costInBody, observeResponseCost, type Metered } from './response-cost.ts'

const target = { cost: { fromResponse: { json: 'usage.total_tokens' } } } as TargetConfig
const json = { 'content-type': 'application/json' }
const sse = { 'content-type': 'text/event-stream; charset=utf-8' }

const chat = (n: number) => `data: {"choices":[{"delta":{"content":"${n}"}}]}\n\n`
const usageChunk = 'data: {"choices":[],"usage":{"prompt_tokens":3,"total_tokens":42}}\n\n'
const stream = chat(1) + chat(2) + usageChunk + 'data: [DONE]\n\n'

/** The body as the client receives it (in small pieces, as a network delivers it) and the cost read. */
async function relay(
  headers: Record<string, string>,
  body: Buffer,
  dropUsageChunk = false,
): Promise<{ sent: Buffer; metered: Metered | undefined }> {
  const pieces = [] as Buffer[]
  for (let i = 0; i < body.length; i += 7) pieces.push(body.subarray(i, i + 7))
  let metered: Metered | undefined
  const out = observeResponseCost(
    target,
    headers,
    Readable.from(pieces),
    (m) => (metered = m),
    dropUsageChunk,
  )
  const sent = Buffer.concat(await out.toArray())
  return { sent, metered }
}

describe('observeResponseCost', () => {
  it('reads a streamed JSON body, plain and gzip, passing the bytes unchanged', async () => {
    const text = Buffer.from('{"usage":{"total_tokens":17}}')
    expect(await relay(json, text)).toMatchObject({ sent: text, metered: { cost: 17 } })
    const gz = gzipSync(text)
    const zipped = await relay({ ...json, 'content-encoding': 'gzip' }, gz)
    expect(zipped.sent.equals(gz)).toBe(true)
    expect(zipped.metered?.cost).toBe(17)
  })

  it('reads the usage of an event stream, and can keep the usage chunk from the client', async () => {
    const plain = await relay(sse, Buffer.from(stream))
    expect(plain.sent.toString()).toBe(stream)
    expect(plain.metered).toMatchObject({ cost: 42, holder: { usage: { prompt_tokens: 3 } } })
    const dropped = await relay(sse, Buffer.from(stream), true)
    expect(dropped.sent.toString()).toBe(chat(1) + chat(2) + 'data: [DONE]\n\n')
    expect(dropped.metered?.cost).toBe(42)
  })

  it('reads a compressed event stream from a decoded copy', async () => {
    const br = brotliCompressSync(stream)
    const result = await relay({ ...sse, 'content-encoding': 'br' }, br)
    expect(result.sent.equals(br)).toBe(true)
    expect(result.metered?.cost).toBe(42)
  })

  it('reads the Responses API’s completed event, whose usage is under response', async () => {
    const events =
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"x"}\n\n' +
      'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11}}}\n\n'
    const result = await relay(sse, Buffer.from(events))
    expect(result.metered).toMatchObject({ cost: 11, holder: { usage: { input_tokens: 5 } } })
  })

  it('leaves a corrupt compressed body to the estimate', async () => {
    const result = await relay({ ...json, 'content-encoding': 'gzip' }, Buffer.from('not gzip'))
    expect(result.sent.toString()).toBe('not gzip')
    expect(result.metered).toBeUndefined()
  })
})

describe('costInBody', () => {
  it('reads whole bodies, plain, compressed and streamed', () => {
    const text = Buffer.from('{"usage":{"total_tokens":9}}')
    expect(costInBody(target, json, text)?.cost).toBe(9)
    expect(costInBody(target, { ...json, 'content-encoding': 'gzip' }, gzipSync(text))?.cost).toBe(
      9,
    )
    expect(costInBody(target, sse, Buffer.from(stream))?.cost).toBe(42)
    expect(costInBody(target, { 'content-type': 'text/plain' }, text)).toBeUndefined()
  })
})
