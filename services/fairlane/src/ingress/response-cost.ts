import { PassThrough, Transform, type Readable } from 'node:stream'
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzipSync,
  inflateSync,
} from 'node:zlib'
import type { TargetConfig } from '@fairlane/config'
import { eventsOf, isEventStream, SseEvents } from './sse-events.ts'

/** A JSON body larger than this (decompressed) is not parsed for its cost; the declared cost stands. */
const MAX_COST_BODY_BYTES = 1024 * 1024

type Headers = Record<string, string | string[] | undefined>

/** The real cost of a response, and the JSON object it was found in (its `usage` prices it). */
export interface Metered {
  readonly cost: number
  readonly holder: Readonly<Record<string, unknown>>
}

function numberAt(value: unknown, path: readonly string[]): number | undefined {
  let current = value
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[part]
  }
  return typeof current === 'number' && Number.isFinite(current) && current >= 0
    ? current
    : undefined
}

/**
 * The cost at `path` in a JSON value: the body or stream event itself, or its `response`
 * (the Responses API's `response.completed` event carries the whole response there).
 */
function meteredIn(value: unknown, path: readonly string[]): Metered | undefined {
  const direct = numberAt(value, path)
  if (direct !== undefined) return { cost: direct, holder: value as Record<string, unknown> }
  const inner =
    value !== null && typeof value === 'object'
      ? (value as Record<string, unknown>)['response']
      : undefined
  const nested = numberAt(inner, path)
  return nested === undefined
    ? undefined
    : { cost: nested, holder: inner as Record<string, unknown> }
}

function jsonPathOf(target: TargetConfig | undefined): string[] | undefined {
  const source = target?.cost.fromResponse
  return source?.json && !source.header ? source.json.split('.') : undefined
}

/** JSON bodies and event streams carry a cost; anything else is not read. */
function readable(headers: Headers): boolean {
  return String(headers['content-type'] ?? '').includes('json') || isEventStream(headers)
}

function encodingOf(headers: Headers): string | undefined {
  const value = headers['content-encoding']
  const text = (Array.isArray(value) ? value.join(',') : (value ?? '')).trim().toLowerCase()
  return text === '' || text === 'identity' ? undefined : text
}

/** A decoder of one content coding; undefined for codings not read (and for stacked ones). */
function decoderOf(encoding: string): Transform | undefined {
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip()
  if (encoding === 'deflate') return createInflate()
  if (encoding === 'br') return createBrotliDecompress()
  return undefined
}

function decodeWhole(encoding: string | undefined, body: Buffer): Buffer | undefined {
  const options = { maxOutputLength: MAX_COST_BODY_BYTES }
  try {
    if (encoding === undefined) return body
    if (encoding === 'gzip' || encoding === 'x-gzip') return gunzipSync(body, options)
    if (encoding === 'deflate') return inflateSync(body, options)
    if (encoding === 'br') return brotliDecompressSync(body, options)
  } catch {
    // Corrupt, or larger than the bound: the estimate stands.
  }
  return undefined
}

/** The last cost of a whole body already read: a JSON document, or an event stream's last usage. */
function meteredInText(
  text: string,
  headers: Headers,
  path: readonly string[],
): Metered | undefined {
  if (isEventStream(headers)) {
    let last: Metered | undefined
    for (const event of eventsOf(text, path[0] ?? '')) last = meteredIn(event, path) ?? last
    return last
  }
  try {
    return meteredIn(JSON.parse(text), path)
  } catch {
    return undefined
  }
}

/**
 * The real cost in a whole body already read, where the target says it is: plain or
 * compressed (a copy is decompressed for metering only), JSON or an event stream.
 */
export function costInBody(
  target: TargetConfig | undefined,
  headers: Headers,
  body: Buffer,
): Metered | undefined {
  const path = jsonPathOf(target)
  if (!path || !readable(headers)) return undefined
  const plain = decodeWhole(encodingOf(headers), body)
  return plain && meteredInText(plain.toString('utf8'), headers, path)
}

/** The real cost in a response header, where the target says it is. */
export function costInHeader(
  target: TargetConfig | undefined,
  headers: Headers,
): number | undefined {
  const name = target?.cost.fromResponse?.header
  if (!name) return undefined
  const raw = headers[name.toLowerCase()]
  const cost = Number(Array.isArray(raw) ? raw[0] : raw)
  return raw !== undefined && Number.isFinite(cost) && cost >= 0 ? cost : undefined
}

/** An OpenAI stream's usage-only chunk: no choice, only the usage of the whole answer. */
function isUsageChunk(json: unknown): boolean {
  const fields = json as Record<string, unknown>
  const choices = fields['choices']
  return Array.isArray(choices) && choices.length === 0 && typeof fields['usage'] === 'object'
}

/**
 * Reads a request's real cost from its response as it streams to the client, where the
 * target says it is: a header, or a number in the JSON body (e.g. `usage.total_tokens`) or
 * in the last event of an event stream that has it. A compressed body reaches the client as
 * it came; a copy is decompressed for metering. `dropUsageChunk` takes an OpenAI stream's
 * usage-only chunk out of what the client receives (Fairlane asked for it, the client did
 * not), on plain streams only.
 */
export function observeResponseCost(
  target: TargetConfig | undefined,
  headers: Headers,
  body: Readable,
  onCost: (metered: Metered) => void,
  dropUsageChunk = false,
): Readable {
  const source = target?.cost.fromResponse
  if (!source) return body
  if (source.header) {
    const cost = costInHeader(target, headers)
    if (cost !== undefined) onCost({ cost, holder: {} })
    return body
  }
  const path = jsonPathOf(target)
  if (!path || !readable(headers)) return body
  const encoding = encodingOf(headers)
  const stream = isEventStream(headers)
  let last: Metered | undefined
  const onEvent = (json: unknown): boolean => {
    const metered = meteredIn(json, path)
    if (metered) last = metered
    return !(dropUsageChunk && encoding === undefined && isUsageChunk(json))
  }
  if (stream && encoding === undefined) {
    const events = new SseEvents(path[0] ?? '', dropUsageChunk, onEvent)
    events.once('end', () => last && onCost(last))
    body.on('error', (err) => events.destroy(err))
    return body.pipe(events)
  }
  if (encoding === undefined) {
    const tee = new PassThrough()
    body.on('error', (err) => tee.destroy(err))
    collectJson(tee, headers, path, onCost, () => undefined)
    return body.pipe(tee)
  }
  const decoder = decoderOf(encoding)
  if (!decoder) return body
  // A compressed body reaches the client as it came; a copy is decoded for metering. The
  // client's stream ends only once the copy is read, so the cost is known when the response
  // closes and the lease goes back with it.
  let settle = (): void => undefined
  const settled = new Promise<void>((resolve) => (settle = resolve))
  let broken = false
  decoder.on('error', () => {
    broken = true
    settle()
  })
  const tee = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!broken) decoder.write(chunk)
      callback(null, chunk)
    },
    flush(callback) {
      if (!broken) decoder.end()
      void settled.then(() => callback())
    },
  })
  body.on('error', (err) => tee.destroy(err))
  if (stream) {
    const events = new SseEvents(path[0] ?? '', false, onEvent)
    events.once('end', () => {
      if (last) onCost(last)
      settle()
    })
    events.resume()
    decoder.pipe(events)
  } else collectJson(decoder, headers, path, onCost, settle)
  return body.pipe(tee)
}

/** Keeps up to MAX_COST_BODY_BYTES of a JSON body and reads its cost at the end. */
function collectJson(
  source: Readable,
  headers: Headers,
  path: readonly string[],
  onCost: (metered: Metered) => void,
  done: () => void,
): void {
  const chunks: Buffer[] = []
  let size = 0
  source.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size <= MAX_COST_BODY_BYTES) chunks.push(chunk)
  })
  source.once('end', () => {
    if (size <= MAX_COST_BODY_BYTES) {
      const found = meteredInText(Buffer.concat(chunks).toString('utf8'), headers, path)
      if (found) onCost(found)
    }
    done()
  })
}
