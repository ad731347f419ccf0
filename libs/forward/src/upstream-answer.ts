import { Readable } from 'node:stream'
import { errors as undiciErrors, type Dispatcher } from 'undici'

/** Answers with a Content-Length up to this many bytes are collected whole, without a stream. */
export const WHOLE_BODY_BYTES = 64 * 1024

export interface UpstreamResponse {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  /** The body as a stream; an answer collected whole makes one only when asked. */
  readonly body: Readable
  /**
   * The whole body of an answer with a Content-Length up to WHOLE_BODY_BYTES, collected as it
   * arrives; absent for any other answer. A consumer reads either this or `body`, not both.
   */
  readonly whole?: Promise<Buffer> | undefined
}

function noop(): void {}

/**
 * One upstream call as undici's dispatch handler and, once its head has arrived, the answer
 * itself: a small body is kept as chunks and handed over whole, anything else is pushed
 * into a stream of its own that pauses the connection while the reader is behind. This
 * spares each request undici's request API (its BodyReadable, its handler, its abort
 * listeners and promise plumbing): in the profile, undici cost Fairlane twice what it costs a
 * bare node:http proxy per request.
 */
export class UpstreamAnswer implements Dispatcher.DispatchHandler, UpstreamResponse {
  status = 0
  headers: Record<string, string | string[] | undefined> = {}
  readonly #method: string
  readonly #signal: AbortSignal
  #requestBody: Readable | null
  #onHead: ((answer: UpstreamAnswer) => void) | null
  #onFailure: ((err: Error) => void) | null
  #controller: Dispatcher.DispatchController | null = null
  #abortReason: Error | null = null
  #listening = false
  /** Chunks of a body collected whole; null once it streams. */
  #chunks: Buffer[] | null = null
  #stream: AnswerStream | null = null
  #ended = false
  #error: Error | null = null
  #whole: Promise<Buffer> | undefined
  #settleWhole: { resolve: (body: Buffer) => void; reject: (err: Error) => void } | null = null

  constructor(
    method: string,
    signal: AbortSignal,
    requestBody: Readable | Buffer | null,
    onHead: (answer: UpstreamAnswer) => void,
    onFailure: (err: Error) => void,
  ) {
    this.#method = method
    this.#signal = signal
    this.#requestBody = requestBody instanceof Readable ? requestBody : null
    this.#onHead = onHead
    this.#onFailure = onFailure
    signal.addEventListener('abort', this.#onAbort, { once: true })
    this.#listening = true
  }

  /** The client left, the race was lost or the deadline passed: the call stops, once. */
  readonly #onAbort = (): void => {
    this.#listening = false
    const reason = abortReason(this.#signal)
    if (this.#controller) this.#controller.abort(reason)
    else this.#abortReason = reason
  }

  #stopListening(): void {
    if (!this.#listening) return
    this.#listening = false
    this.#signal.removeEventListener('abort', this.#onAbort)
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#abortReason) {
      controller.abort(this.#abortReason)
      return
    }
    this.#controller = controller
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (status < 200) return
    this.status = status
    this.headers = headers
    const length = Number(headers['content-length'])
    if (this.#method !== 'HEAD' && length <= WHOLE_BODY_BYTES) this.#chunks = []
    else this.#stream = new AnswerStream(controller)
    const onHead = this.#onHead
    this.#onHead = null
    this.#onFailure = null
    onHead?.(this)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#chunks) this.#chunks.push(chunk)
    else if (this.#stream && !this.#stream.push(chunk)) controller.pause()
  }

  onResponseEnd(): void {
    this.#stopListening()
    this.#ended = true
    if (this.#stream) {
      this.#stream.finish()
      return
    }
    const settle = this.#settleWhole
    if (settle) {
      this.#settleWhole = null
      settle.resolve(this.#joined())
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.#stopListening()
    this.#error = err
    const body = this.#requestBody
    if (body) {
      this.#requestBody = null
      body.on('error', noop)
      body.destroy(err)
    }
    const onFailure = this.#onFailure
    if (onFailure) {
      this.#onHead = null
      this.#onFailure = null
      onFailure(err)
      return
    }
    if (this.#stream) {
      this.#stream.destroy(err)
      return
    }
    const settle = this.#settleWhole
    if (settle) {
      this.#settleWhole = null
      settle.reject(err)
    }
  }

  get whole(): Promise<Buffer> | undefined {
    if (this.#chunks === null) return undefined
    if (this.#whole) return this.#whole
    if (this.#ended) this.#whole = Promise.resolve(this.#joined())
    else if (this.#error) this.#whole = Promise.reject(this.#error)
    else {
      this.#whole = new Promise<Buffer>((resolve, reject) => {
        this.#settleWhole = { resolve, reject }
      })
    }
    return this.#whole
  }

  /** A body collected whole turns into a stream when a reader asks for one instead. */
  get body(): Readable {
    if (this.#stream) return this.#stream
    const stream = new AnswerStream(this.#controller)
    this.#stream = stream
    const chunks = this.#chunks ?? []
    this.#chunks = null
    for (const chunk of chunks) stream.push(chunk)
    if (this.#ended) stream.finish()
    else if (this.#error) stream.destroy(this.#error)
    return stream
  }

  #joined(): Buffer {
    const chunks = this.#chunks ?? []
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
  }
}

/**
 * A streamed answer body: undici pauses while the reader is behind and resumes when it
 * reads; a reader that stops early (the client left) aborts the call.
 */
class AnswerStream extends Readable {
  readonly #controller: Dispatcher.DispatchController | null
  #finished = false

  constructor(controller: Dispatcher.DispatchController | null) {
    super()
    this.#controller = controller
  }

  /** The whole body is in: destroying the stream now stops nothing upstream. */
  finish(): void {
    this.#finished = true
    this.push(null)
  }

  override _read(): void {
    this.#controller?.resume()
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.#finished) this.#controller?.abort(err ?? new undiciErrors.RequestAbortedError())
    callback(err)
  }
}

/** The error a call stops with when its signal aborts. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason
  return reason instanceof Error ? reason : new undiciErrors.RequestAbortedError()
}
