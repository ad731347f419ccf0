import { describe, expect, it } from 'vitest'
import { checkJobBody } from './job-body.ts'
import { jobDocument, type JobRecord } from './job.ts'

function job(body: unknown): JobRecord {
  const checked = checkJobBody(body)
  if (!checked.ok) throw new Error(checked.problems.join())
  return {
    id: 'job_1',
    workspace: 'w',
    keyId: 'k',
    state: 'queued',
    body: checked.body,
    createdAt: 0,
    updatedAt: 0,
    dueAt: 0,
    deadlineAt: 60_000,
    attempts: [],
    chainId: 'job_1',
    deliveries: [],
  }
}

describe('jobDocument', () => {
  it('shows URLs and paths without their query, which every webhook receiver would see', () => {
    const byUrl = jobDocument(
      job({
        request: { url: 'https://api.example.com/v1/orders?api_key=s3cret' },
        webhooks: [
          { url: 'https://hooks.example.com/in?token=s3cret' },
          { target: 'hooks', path: '/in?token=s3cret' },
        ],
      }),
    )
    expect(byUrl).toMatchObject({
      request: { url: 'https://api.example.com/v1/orders' },
      webhooks: [{ url: 'https://hooks.example.com/in' }, { target: 'hooks', path: '/in' }],
    })
    const byTarget = jobDocument(job({ request: { target: 'echo', path: '/orders?sig=s3cret' } }))
    expect(byTarget).toMatchObject({ request: { target: 'echo', path: '/orders' } })
    expect(JSON.stringify([byUrl, byTarget])).not.toContain('s3cret')
  })
})
