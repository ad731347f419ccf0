import { describe, expect, it } from 'vitest'
import { verifyWebhook, webhookHeaders, webhookSignature } from './webhook-signature.ts'

// The example of the Standard Webhooks reference libraries.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek'
const TS = 1614265330
const BODY = '{"test": 2432232314}'

describe('Standard Webhooks signature', () => {
  it('matches the reference vector', () => {
    expect(webhookSignature(SECRET, ID, TS, BODY)).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    )
  })

  it('signs with the first secret; a receiver holding either secret of a rotation accepts', () => {
    const next = 'whsec_' + Buffer.from('the next secret').toString('base64')
    const headers = webhookHeaders([next, SECRET], ID, TS, BODY)
    expect(headers['webhook-signature']).toBe(webhookSignature(next, ID, TS, BODY))
    expect(verifyWebhook(headers, BODY, [SECRET, next], TS)).toBe(true)
    expect(verifyWebhook(headers, BODY, [SECRET], TS)).toBe(false)
  })

  it('refuses a changed body, another id, and a timestamp outside the tolerance', () => {
    const headers = webhookHeaders([SECRET], ID, TS, BODY)
    expect(verifyWebhook(headers, BODY, [SECRET], TS + 299)).toBe(true)
    expect(verifyWebhook(headers, BODY + ' ', [SECRET], TS)).toBe(false)
    expect(verifyWebhook({ ...headers, 'webhook-id': 'msg_other' }, BODY, [SECRET], TS)).toBe(false)
    expect(verifyWebhook(headers, BODY, [SECRET], TS + 301)).toBe(false)
  })

  it('accepts a header listing several signatures when one matches', () => {
    const headers = webhookHeaders([SECRET], ID, TS, BODY)
    const listed = { ...headers, 'webhook-signature': `v1,bogus ${headers['webhook-signature']}` }
    expect(verifyWebhook(listed, BODY, [SECRET], TS)).toBe(true)
  })

  it('refuses a secret that is not whsec_ and base64', () => {
    expect(() => webhookSignature('plain', ID, TS, BODY)).toThrow(/whsec_/)
  })
})
