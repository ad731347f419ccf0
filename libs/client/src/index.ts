export {
  FairlaneClient,
  WaitTimeoutError,
  type FairlaneClientOptions,
  type FairlaneFetch,
  type WaitOptions,
} from './fairlane-client.ts'
export {
  AuthenticationError,
  BadRequestError,
  ConflictError,
  FairlaneError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  UnavailableError,
  UpstreamError,
  errorFrom,
  problemError,
  type Problem,
} from './fairlane-error.ts'
export type {
  Job,
  JobAttempt,
  JobPage,
  JobRequest,
  JobResponse,
  JobState,
  JobWebhook,
  ListJobsOptions,
  QueueOptions,
  QueuedJob,
} from './job.ts'
export {
  WebhookVerificationError,
  verifyWebhook,
  type VerifyWebhookOptions,
  type WebhookHeaders,
  type WebhookRefusal,
} from './verify-webhook.ts'
