import { FairlaneError } from '@fairlane/protocol'
import type { Price } from './model-table.ts'

/** What Fairlane reads from an OpenAI-style request body; the body itself goes on unchanged. */
export interface OpenAiRequest {
  readonly model: string
  /** The client asked for a stream (`"stream": true`). */
  readonly stream: boolean
  /** The client said whether it wants the stream's usage chunk (`stream_options` present). */
  readonly streamOptions: boolean
  /** Most output tokens the client allows: max_completion_tokens, max_tokens or max_output_tokens. */
  readonly maxOutputTokens?: number
}

function badBody(detail: string): FairlaneError {
  return new FairlaneError('bad_request', 'resolve', detail)
}

function wholeAt(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name]
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** Parses the body of a POST to an OpenAI-style endpoint; 400 when it names no model. */
export function readOpenAiRequest(body: Buffer): OpenAiRequest {
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw badBody('the request body must be JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw badBody('the request body must be a JSON object')
  const fields = parsed as Record<string, unknown>
  const model = fields['model']
  if (typeof model !== 'string' || model.length === 0)
    throw badBody('the request body must name a model ("model": "<name>")')
  const maxOutputTokens =
    wholeAt(fields, 'max_completion_tokens') ??
    wholeAt(fields, 'max_tokens') ??
    wholeAt(fields, 'max_output_tokens')
  return {
    model,
    stream: fields['stream'] === true,
    streamOptions: fields['stream_options'] !== undefined,
    ...(maxOutputTokens !== undefined ? { maxOutputTokens } : {}),
  }
}

/**
 * Tokens to reserve before the answer says how many were used: the prompt at about 4 bytes
 * a token (the body's JSON is a little more than the prompt, so this errs high) plus the
 * most the answer may hold. Settled against the real usage afterwards.
 */
export function estimateTokens(body: Buffer, request: OpenAiRequest): number {
  return Math.max(1, promptTokens(body) + (request.maxOutputTokens ?? 0))
}

/** Tokens of the prompt, as estimateTokens counts them. */
function promptTokens(body: Buffer): number {
  return Math.ceil(body.length / 4)
}

/** The price to reserve at admission: the estimated prompt and the most output allowed. */
export function estimateCents(body: Buffer, request: OpenAiRequest, price: Price): number {
  return (promptTokens(body) * price.input + (request.maxOutputTokens ?? 0) * price.output) / 1e6
}

function count(usage: Record<string, unknown>, ...names: string[]): number {
  for (const name of names) {
    const value = usage[name]
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  }
  return 0
}

/**
 * The price of an answer's usage (`usage` of the object its cost was read from): prompt or
 * input tokens, completion or output tokens (chat, completions, embeddings, responses).
 * Undefined when the object has no usage.
 */
export function centsOfUsage(
  holder: Readonly<Record<string, unknown>>,
  price: Price,
): number | undefined {
  const usage = holder['usage']
  if (usage === null || typeof usage !== 'object') return undefined
  const fields = usage as Record<string, unknown>
  const input = count(fields, 'prompt_tokens', 'input_tokens')
  const output = count(fields, 'completion_tokens', 'output_tokens')
  return (input * price.input + output * price.output) / 1e6
}

const USAGE_OPTION = Buffer.from('"stream_options":{"include_usage":true},')

/**
 * The body with `stream_options.include_usage` added, for a stream whose client did not ask
 * for usage: inserted after the opening brace, every other byte as the client sent it.
 */
export function withStreamUsage(body: Buffer): Buffer {
  const open = body.indexOf(0x7b)
  return Buffer.concat([body.subarray(0, open + 1), USAGE_OPTION, body.subarray(open + 1)])
}
