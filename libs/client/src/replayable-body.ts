/**
 * Whether a fetch body can be sent a second time as it is: everything but a stream, which
 * the first attempt consumed.
 */
export function replayable(body: RequestInit['body']): boolean {
  return !(body instanceof ReadableStream) && !isAsyncIterable(body)
}

function isAsyncIterable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value
}
