import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { verifyWebhook } from './webhook-signature.ts'

interface VectorCase {
  readonly name: string
  readonly secrets: readonly string[]
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly now: number
  readonly valid: boolean
}

// The vectors the three clients verify with (spec/test-vectors): the server that signs must
// agree with every one of them.
const vectors = JSON.parse(
  readFileSync(
    new URL('../../../spec/test-vectors/webhook-signatures.json', import.meta.url),
    'utf8',
  ),
) as { readonly cases: readonly VectorCase[] }

describe('the shared webhook signature vectors', () => {
  it.each(vectors.cases)('$name', (vector) => {
    const headers = Object.fromEntries(
      Object.entries(vector.headers).map(([name, value]) => [name.toLowerCase(), value]),
    )
    expect(verifyWebhook(headers, vector.body, vector.secrets, vector.now)).toBe(vector.valid)
  })
})
