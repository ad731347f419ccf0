import { Transform, type TransformCallback } from 'node:stream'
import { FairlaneError } from '@fairlane/protocol'

/**
 * Counts a request body as it streams and fails it past `maxBytes`. Needed only for bodies
 * without Content-Length (chunked): a declared length is checked before anything is read,
 * and Node's parser holds the client to it.
 */
export class BodyLimit extends Transform {
  readonly #maxBytes: number
  readonly #onExceed: () => void
  #seen = 0
  exceeded = false

  /**
   * `onExceed` runs before the stream fails: the caller stops the upstream call as its own
   * abort, so an oversized body never counts against the endpoint's health.
   */
  constructor(maxBytes: number, onExceed: () => void = () => undefined) {
    super()
    this.#maxBytes = maxBytes
    this.#onExceed = onExceed
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#maxBytes) {
      this.exceeded = true
      this.#onExceed()
      callback(tooLarge(this.#maxBytes, 'forward'))
      return
    }
    callback(null, chunk)
  }
}

export function tooLarge(
  maxBytes: number,
  stage: 'correlate' | 'resolve' | 'forward',
): FairlaneError {
  return new FairlaneError(
    'payload_too_large',
    stage,
    `request body is larger than ${maxBytes} bytes`,
  )
}
