import { writeSync } from 'node:fs'

export interface LineSinkOptions {
  /** The file descriptor lines are written to. */
  readonly fd: number
  /**
   * Most characters held while the descriptor takes nothing (a log reader that stopped
   * reading): lines beyond are dropped and counted, so a stuck reader costs bounded memory.
   */
  readonly maxHeldChars?: number
  /** How long to wait before trying again after the descriptor refused a write (EAGAIN). */
  readonly retryMs?: number
  /** Runs the flush after the current I/O phase; setImmediate unless a test says otherwise. */
  readonly schedule?: (flush: () => void) => void
}

const MAX_HELD_CHARS = 16 * 1024 * 1024
const RETRY_MS = 10
/** The longest an exit waits for a descriptor that refuses writes before it gives the rest up. */
const EXIT_WAIT_MS = 2_000

const busy = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN'

/**
 * Log lines to a file descriptor, gathered over one turn of the event loop and written with
 * one synchronous write: a write per turn instead of a thread-pool round trip per few lines,
 * and no string re-measured per line (pino's default destination re-reads its whole pending
 * buffer for each line). A descriptor that is full (a non-blocking pipe or socket whose reader
 * lags) is tried again shortly, the lines held meanwhile up to a bound and then dropped and
 * counted, so the request path never blocks on its log and never grows without bound. What
 * is held when the process exits is written then.
 */
export class LineSink {
  readonly #fd: number
  readonly #maxHeldChars: number
  readonly #retryMs: number
  readonly #schedule: (flush: () => void) => void
  #lines: string[] = []
  #heldChars = 0
  /** Bytes a write left over (the descriptor took part of them): they go before any line. */
  #rest: Buffer | undefined
  #scheduled = false
  #dropped = 0

  constructor(options: LineSinkOptions) {
    this.#fd = options.fd
    this.#maxHeldChars = options.maxHeldChars ?? MAX_HELD_CHARS
    this.#retryMs = options.retryMs ?? RETRY_MS
    this.#schedule = options.schedule ?? setImmediate
    sinks.add(this)
  }

  /** Lines dropped so far because the descriptor took nothing for too long. */
  get dropped(): number {
    return this.#dropped
  }

  /** Takes one line (with its newline); written once this turn of the event loop ends. */
  write(line: string): boolean {
    if (this.#heldChars + line.length > this.#maxHeldChars) {
      this.#dropped++
      return false
    }
    this.#lines.push(line)
    this.#heldChars += line.length
    if (!this.#scheduled) {
      this.#scheduled = true
      this.#schedule(this.#flush)
    }
    return true
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    if (this.#writeHeld()) return
    this.#scheduled = true
    setTimeout(this.#flush, this.#retryMs).unref()
  }

  /**
   * Writes what is held, as far as the descriptor takes it; true when nothing is left.
   * Any error other than EAGAIN (a reader that closed its end) drops what was held: the
   * lines have nowhere to go.
   */
  #writeHeld(): boolean {
    const lines = this.#lines.length
    if (this.#rest === undefined) {
      if (lines === 0) return true
      // The usual case: the lines as one string, written whole by one call, with no Buffer made.
      const joined = this.#lines.join('')
      this.#lines = []
      this.#heldChars = 0
      let written = 0
      try {
        written = writeSync(this.#fd, joined)
      } catch (err) {
        if (!busy(err)) {
          this.#dropped += lines
          return true
        }
      }
      const bytes = Buffer.byteLength(joined)
      if (written === bytes) return true
      this.#rest = Buffer.from(joined).subarray(written)
    } else if (lines > 0) {
      this.#rest = Buffer.concat([this.#rest, Buffer.from(this.#lines.join(''))])
      this.#lines = []
    }
    return this.#writeRest(lines)
  }

  /** What a full descriptor left over, and any line since: true once all of it is written. */
  #writeRest(lines: number): boolean {
    const rest = this.#rest as Buffer
    let written = 0
    try {
      while (written < rest.length) written += writeSync(this.#fd, rest, written)
    } catch (err) {
      if (busy(err)) {
        this.#rest = rest.subarray(written)
        this.#heldChars = this.#rest.length
        return false
      }
      this.#dropped += lines
    }
    this.#rest = undefined
    this.#heldChars = 0
    return true
  }

  /** Writes everything held now, waiting out a full descriptor for a bounded time (exit). */
  flushSync(): void {
    const giveUpAt = Date.now() + EXIT_WAIT_MS
    const pause = new Int32Array(new SharedArrayBuffer(4))
    while (!this.#writeHeld() && Date.now() < giveUpAt) Atomics.wait(pause, 0, 0, 1)
  }
}

/** Every sink, written out when the process exits (after process.exit() too). */
const sinks = new Set<LineSink>()
process.once('exit', () => {
  for (const sink of sinks) sink.flushSync()
})

let stdout: LineSink | undefined

/**
 * The process's one sink on standard output: every logger writing there shares it, so lines
 * keep their order. Touching process.stdout first makes Node set a pipe or socket there
 * non-blocking, so a reader that lags fills the sink's bound instead of stalling the process.
 */
export function stdoutLines(): LineSink {
  if (!stdout) {
    void process.stdout
    stdout = new LineSink({ fd: 1 })
  }
  return stdout
}
