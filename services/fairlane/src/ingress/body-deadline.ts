import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { FairlaneError } from '@fairlane/protocol'

export interface BodyDeadlineOptions {
  /** Longest silence between two chunks. */
  readonly idleMs: number
  /** Longest time for the whole body, from the first read. */
  readonly totalMs: number
  readonly now: () => number
  /**
   * Called once when the body is too slow, before the stream fails: the caller stops the
   * upstream call as its own abort, so a slow client never counts against the endpoint.
   */
  readonly onExpire: () => void
}

/**
 * Passes a request body through and fails it when the client sends it too slowly. A client
 * that trickles a body holds an upstream connection for as long as it likes otherwise.
 * Bytes that wait on our side (the upstream reads slowly) do not count as client silence.
 * One timer per body, re-armed when it fires rather than on every chunk.
 */
export class BodyDeadline extends Transform {
  /** Set when the body was too slow; the answer to send. */
  failure: FairlaneError | undefined
  readonly #source: Readable
  readonly #options: BodyDeadlineOptions
  readonly #deadline: number
  #lastChunkAt: number
  #timer: NodeJS.Timeout

  constructor(source: Readable, options: BodyDeadlineOptions) {
    super()
    this.#source = source
    this.#options = options
    this.#lastChunkAt = options.now()
    this.#deadline = this.#lastChunkAt + options.totalMs
    this.#timer = setTimeout(() => this.#check(), Math.min(options.idleMs, options.totalMs))
    // Whoever reads the body sees the failure; the upstream call may already be gone when it
    // happens (its abort removed undici's listener), and an unheard error must not crash.
    this.on('error', () => undefined)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#lastChunkAt = this.#options.now()
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    clearTimeout(this.#timer)
    callback()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer)
    callback(err)
  }

  #check(): void {
    const { idleMs, totalMs, now } = this.#options
    const at = now()
    if (this.#source.readableLength > 0 || this.writableLength > 0 || this.readableLength > 0) {
      this.#lastChunkAt = at
    }
    const idleEnd = this.#lastChunkAt + idleMs
    if (at < this.#deadline && at < idleEnd) {
      this.#timer = setTimeout(() => this.#check(), Math.min(idleEnd, this.#deadline) - at)
      return
    }
    this.failure = new FairlaneError(
      'request_timeout',
      'forward',
      at >= this.#deadline
        ? `the request body did not arrive whole within ${totalMs} ms`
        : `no byte of the request body arrived for ${idleMs} ms`,
    )
    this.#options.onExpire()
    this.destroy(this.failure)
  }
}
