import { PassThrough, type Readable } from 'node:stream'
import type { TargetConfig } from '@fairlane/config'

/** A JSON body larger than this is not parsed for its cost; the declared cost stands. */
const MAX_COST_BODY_BYTES = 1024 * 1024

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

/** The real cost in a whole JSON body already read, where the target says it is. */
export function costInBody(
  target: TargetConfig | undefined,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): number | undefined {
  const source = target?.cost.fromResponse
  if (!source?.json || source.header) return undefined
  const type = String(headers['content-type'] ?? '')
  if (!type.includes('json') || headers['content-encoding'] !== undefined) return undefined
  try {
    return numberAt(JSON.parse(body.toString('utf8')), source.json.split('.'))
  } catch {
    return undefined
  }
}

/** The real cost in a response header, where the target says it is. */
export function costInHeader(
  target: TargetConfig | undefined,
  headers: Record<string, string | string[] | undefined>,
): number | undefined {
  const name = target?.cost.fromResponse?.header
  if (!name) return undefined
  const raw = headers[name.toLowerCase()]
  const cost = Number(Array.isArray(raw) ? raw[0] : raw)
  return raw !== undefined && Number.isFinite(cost) && cost >= 0 ? cost : undefined
}

/**
 * Reads a request's real cost from its response, where the target says where it is: a
 * header, or a number in the JSON body (e.g. `usage.total_tokens`). The body still streams
 * to the client as it comes; a copy of up to 1 MiB is kept to parse at the end.
 */
export function observeResponseCost(
  target: TargetConfig | undefined,
  headers: Record<string, string | string[] | undefined>,
  body: Readable,
  onCost: (cost: number) => void,
): Readable {
  const source = target?.cost.fromResponse
  if (!source) return body
  if (source.header) {
    const cost = costInHeader(target, headers)
    if (cost !== undefined) onCost(cost)
    return body
  }
  const path = source.json?.split('.')
  const type = String(headers['content-type'] ?? '')
  if (!path || !type.includes('json') || headers['content-encoding'] !== undefined) return body
  const chunks: Buffer[] = []
  let size = 0
  const tee = new PassThrough()
  tee.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size <= MAX_COST_BODY_BYTES) chunks.push(chunk)
  })
  tee.on('end', () => {
    if (size > MAX_COST_BODY_BYTES) return
    try {
      const cost = numberAt(JSON.parse(Buffer.concat(chunks).toString('utf8')), path)
      if (cost !== undefined) onCost(cost)
    } catch {
      // Not JSON after all: the declared cost stands.
    }
  })
  body.on('error', (err) => tee.destroy(err))
  return body.pipe(tee)
}
