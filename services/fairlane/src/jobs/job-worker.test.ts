import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { configFromValue, type ConfigStore } from '@fairlane/config'
import { checkJobBody, SqliteJobStore, type JobRecord } from '@fairlane/jobs'
import { createLogger } from '@fairlane/telemetry'
import { LogCapture } from '@fairlane/testing'
import type { JobAttemptDeps } from './job-attempt.ts'
import { JobWorker } from './job-worker.ts'
import type { WebhookSenderDeps } from './webhook-sender.ts'

/** A store whose claims answer only when the test says: a slow disk, on purpose. */
class SlowClaimStore extends SqliteJobStore {
  release = (): void => undefined
  readonly #released = new Promise<void>((resolve) => (this.release = resolve))

  override async claim(
    limit: number,
    perLane: number,
    accept: (job: JobRecord) => boolean,
  ): Promise<JobRecord[]> {
    const claimed = await super.claim(limit, perLane, accept)
    await this.#released
    return claimed
  }
}

describe('JobWorker.close', () => {
  it('waits for a claim under way and records its attempts before the store closes', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'fairlane-worker-')), 'jobs.sqlite')
    const options = {
      file,
      now: () => 1_000,
      newId: () => 'job_1',
      retentionMs: 60_000,
      idempotencyMs: 60_000,
    }
    const store = new SlowClaimStore(options)
    const checked = checkJobBody({ request: { target: 'echo', path: '/' } })
    if (!checked.ok) throw new Error(checked.problems.join())
    // Past its deadline when the worker takes it: the attempt is recorded without a call.
    await store.submit({ workspace: 'w', keyId: 'k', deadlineMs: 1, body: checked.body })
    const config = configFromValue({}, {}, 'test')
    const configStore: ConfigStore = { current: () => config, subscribe: () => () => undefined }
    const logs = new LogCapture()
    const worker = new JobWorker({
      config: configStore,
      jobs: store,
      // Never reached: a job past its deadline makes no upstream call and sends no webhook.
      attempt: {} as JobAttemptDeps,
      webhook: {} as WebhookSenderDeps,
      logger: createLogger({ level: 'info', destination: logs }),
      wallClock: () => 10_000,
      random: () => 0.5,
    })
    worker.start()
    await sleep(100)
    setTimeout(() => store.release(), 200)
    await worker.close(5_000)
    await store.close()
    await sleep(300)
    expect(logs.lines().filter((line) => line['level'] === 'error')).toEqual([])
    const reopened = new SqliteJobStore(options)
    expect(await reopened.get('w', 'job_1')).toMatchObject({
      state: 'failed',
      error: { code: 'job_deadline' },
    })
    await reopened.close()
  })
})
