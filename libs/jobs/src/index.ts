export {
  checkJobBody,
  /** @public npm run schema:job prints it. */
  jobBodyJsonSchemaText,
  webhooksOf,
  type JobBody,
  type JobBodyCheck,
  type WebhookBody,
} from './job-body.ts'
export {
  FINISHED_STATES,
  jobDocument,
  type Delivery,
  type JobAttempt,
  type JobRecord,
  type JobResponse,
  type JobState,
} from './job.ts'
export type { AttemptEnd, JobQuery, JobStore, NewJob, SubmitResult } from './job-store.ts'
export { SqliteJobStore, type SqliteJobStoreOptions } from './sqlite-job-store.ts'
export { attemptVerdict, type AttemptResult, type AttemptVerdict } from './attempt-policy.ts'
export { afterDelivery, type DeliverySchedule } from './delivery-schedule.ts'
export { followUpOf } from './chain.ts'
export { verifyWebhook, webhookHeaders } from './webhook-signature.ts'
export { JetStreamJobStore, type JetStreamJobStoreOptions } from './jetstream-job-store.ts'
export { sortableJobId } from './job-id.ts'
