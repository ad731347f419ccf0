/** Why a webhook was refused; the same reasons in every Fairlane client. */
export type WebhookRefusal =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'no_matching_signature'

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError'
  readonly reason: WebhookRefusal

  constructor(reason: WebhookRefusal, message: string) {
    super(message)
    this.reason = reason
  }
}

export type WebhookHeaders =
  Headers | Readonly<Record<string, string | readonly string[] | undefined>>

export interface VerifyWebhookOptions {
  /** Largest distance between the webhook's timestamp and now, either way. Default 300. */
  readonly toleranceSeconds?: number
  /** The clock, in milliseconds since the epoch. */
  readonly now?: () => number
}

const SECRET_PREFIX = 'whsec_'
const encoder = new TextEncoder()

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return typeof value === 'string' ? value : value?.[0]
  }
  return undefined
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

function signatures(header: string): Uint8Array<ArrayBuffer>[] {
  const found: Uint8Array<ArrayBuffer>[] = []
  for (const part of header.split(' ')) {
    const [version, signature] = part.split(',', 2)
    if (version !== 'v1' || !signature) continue
    try {
      found.push(fromBase64(signature))
    } catch {
      // A signature that is not base64 matches nothing; the others may still match.
    }
  }
  return found
}

// The key type is left to inference: @types/node declares CryptoKey only as a value.
function hmacKey(secret: string) {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret
  return crypto.subtle.importKey(
    'raw',
    fromBase64(encoded),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['verify'],
  )
}

/**
 * Checks a webhook from Fairlane (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`) against the workspace's secrets, any of which may have signed it
 * (rotation), and returns the parsed body. `rawBody` must be the bytes as received: JSON
 * parsed and serialised again does not verify. Throws WebhookVerificationError.
 */
export async function verifyWebhook<T = unknown>(
  headers: WebhookHeaders,
  rawBody: string | Uint8Array,
  secrets: string | readonly string[],
  options: VerifyWebhookOptions = {},
): Promise<T> {
  const id = header(headers, 'webhook-id')
  const timestamp = header(headers, 'webhook-timestamp')
  const signature = header(headers, 'webhook-signature')
  if (!id || !timestamp || !signature) {
    throw new WebhookVerificationError(
      'missing_headers',
      'webhook-id, webhook-timestamp and webhook-signature are all required',
    )
  }
  if (!/^\d+$/.test(timestamp)) {
    throw new WebhookVerificationError('invalid_timestamp', `webhook-timestamp is not unix seconds`)
  }
  const tolerance = options.toleranceSeconds ?? 300
  const now = Math.floor((options.now ?? Date.now)() / 1000)
  const age = now - Number(timestamp)
  if (age > tolerance) {
    throw new WebhookVerificationError('timestamp_too_old', `webhook is ${age} s old`)
  }
  if (-age > tolerance) {
    throw new WebhookVerificationError('timestamp_too_new', `webhook is ${-age} s in the future`)
  }
  const body = typeof rawBody === 'string' ? encoder.encode(rawBody) : rawBody
  const signed = new Uint8Array(encoder.encode(`${id}.${timestamp}.`).length + body.length)
  signed.set(encoder.encode(`${id}.${timestamp}.`))
  signed.set(body, signed.length - body.length)
  const candidates = signatures(signature)
  // subtle.verify compares in constant time.
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) {
    const key = await hmacKey(secret)
    for (const candidate of candidates) {
      if (await crypto.subtle.verify('HMAC', key, candidate, signed)) {
        return JSON.parse(new TextDecoder().decode(body)) as T
      }
    }
  }
  throw new WebhookVerificationError(
    'no_matching_signature',
    'no webhook-signature matches any of the secrets',
  )
}
