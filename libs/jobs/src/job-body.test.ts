import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { checkJobBody, jobBodyJsonSchemaText } from './job-body.ts'

describe('checkJobBody', () => {
  it('takes the documented shape and fills its defaults', () => {
    const checked = checkJobBody({
      request: { method: 'POST', target: 'echo', path: '/orders', headers: {}, body: { a: 1 } },
      webhook: { target: 'hooks', path: '/fairlane' },
      tier: 'paid',
      deadlineMs: 600_000,
    })
    expect(checked).toMatchObject({ ok: true, body: { retry: { attempts: 10 } } })
    expect(checkJobBody({ request: { url: 'https://api.example.com/x' } })).toMatchObject({
      ok: true,
      body: { request: { method: 'POST', headers: {} } },
    })
  })

  it('lists every problem', () => {
    const checked = checkJobBody({
      request: { target: 'echo', url: 'https://x.example/', body: 1, bodyBase64: 'AA==' },
      webhooks: [{ target: 'hooks' }],
      quorum: 2,
    })
    expect(checked.ok).toBe(false)
    expect(checked.ok ? [] : checked.problems).toEqual([
      'request: give either target (with path) or url',
      'request: give body or bodyBase64, not both',
      'quorum: 2 is more than the 1 webhook(s) given',
    ])
    expect(checkJobBody({ request: { target: 'echo' }, extra: true })).toMatchObject({
      ok: false,
      problems: ['body: unknown key "extra"'],
    })
  })

  it('docs/job.schema.json is the schema this validates with (npm run schema:job)', () => {
    const published = readFileSync(
      new URL('../../../docs/job.schema.json', import.meta.url),
      'utf8',
    )
    expect(published).toBe(jobBodyJsonSchemaText())
  })
})
