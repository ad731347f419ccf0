import { ERROR_CODES, type FairlaneError } from '@fairlane/protocol'

/** A refusal in the shape OpenAI's API and SDKs use, with Fairlane's own code and request id. */
export interface OpenAiError {
  readonly error: {
    readonly message: string
    readonly type: string
    readonly code: string
    readonly param: string | null
    readonly requestId: string
  }
}

/** OpenAI's error types by status; anything else from Fairlane is a server error. */
function typeOf(status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 404) return 'not_found_error'
  if (status === 429) return 'rate_limit_error'
  if (status < 500) return 'invalid_request_error'
  return 'server_error'
}

/**
 * The body of a refusal on the OpenAI-style routes. The message leads with the short text
 * (for 429 "Rate limit exceeded") and says what exactly was wrong, so the SDK's error (its
 * `message` is this one) is useful on its own.
 */
export function openAiError(err: FairlaneError, requestId: string, detail: string): OpenAiError {
  const { status, title } = ERROR_CODES[err.code]
  const short = status === 429 ? 'Rate limit exceeded' : title
  return {
    error: {
      message: `${short}: ${detail}`,
      type: typeOf(status),
      code: err.code,
      param: err.code === 'model_not_allowed' ? 'model' : null,
      requestId,
    },
  }
}
