import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<body>` with the secret after its `whsec_` prefix,
 * base64-decoded; the header carries `v1,<base64>`, several space-separated during rotation.
 */

const PREFIX = 'whsec_'
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** A secret's key bytes; throws on anything but `whsec_` and base64. */
function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : ''
  if (!BASE64.test(encoded)) throw new Error('a webhook secret is whsec_ followed by base64')
  return Buffer.from(encoded, 'base64')
}

export function webhookSignature(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): string {
  const mac = createHmac('sha256', webhookSecretKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64')
  return `v1,${mac}`
}

/** The three headers of one delivery, signed with the first secret. */
export function webhookHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const first = secrets[0]
  if (first === undefined) throw new Error('no webhook secret to sign with')
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': webhookSignature(first, id, timestamp, body),
  }
}

/**
 * A receiver's check: one of the signatures matches one of the secrets, and the timestamp is
 * within `toleranceS` of `nowS` (replays of old deliveries are refused).
 */
export function verifyWebhook(
  headers: Readonly<Record<string, string | undefined>>,
  body: string,
  secrets: readonly string[],
  nowS: number,
  toleranceS = 300,
): boolean {
  const id = headers['webhook-id']
  const timestamp = Number(headers['webhook-timestamp'])
  const signatures = headers['webhook-signature']
  if (!id || !Number.isInteger(timestamp) || !signatures) return false
  if (Math.abs(nowS - timestamp) > toleranceS) return false
  const expected = secrets.map((s) => Buffer.from(webhookSignature(s, id, timestamp, body)))
  return signatures.split(' ').some((given) => {
    const bytes = Buffer.from(given)
    return expected.some((e) => e.length === bytes.length && timingSafeEqual(e, bytes))
  })
}
