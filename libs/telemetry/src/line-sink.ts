import { fstatSync, writeSync, writev } from 'node:fs'

export interface LineSinkOptions {
  /** The file descriptor lines are written to. */
  readonly fd: number
  /**
   * A write to the descriptor may block (a regular file, a terminal): lines then go to it from
   * libuv's thread pool, one write at a time, never from the event loop. Default false: a
   * non-blocking pipe or socket, written synchronously.
   */
  readonly mayBlock?: boolean
  /**
   * Most bytes held while the descriptor takes nothing (a log reader that stopped reading),
   * counting lines not yet written by their length: lines beyond are dropped and counted,
   * so a stuck reader costs bounded memory.
   */
  readonly maxHeldBytes?: number
  /** How long to wait before trying again after the descriptor refused a write (EAGAIN). */
  readonly retryMs?: number
  /** Runs the next write later: FLUSH_MS from the first line after the last, unless a test says otherwise. */
  readonly schedule?: (flush: () => void) => void
  /**
   * Told once, at the first write that failed for good (a reader that closed its end): its
   * lines are dropped and counted, and later lines are tried again as they come.
   */
  readonly onFailure?: (err: NodeJS.ErrnoException) => void
}

const MAX_HELD_BYTES = 16 * 1024 * 1024
/**
 * How long lines gather before they are written. A write per event-loop turn cost about 6 µs
 * per request at 10,000 requests/s (one write, and one wake-up of the log's reader, for every
 * few lines); writing every 10 ms costs a tenth of that and keeps at most 10 ms of lines.
 */
const FLUSH_MS = 10
const RETRY_MS = 10
/** The longest an exit waits for a descriptor that refuses writes before it gives the rest up. */
const EXIT_WAIT_MS = 2_000

/** Errors after which the same write may succeed later. */
const RETRYABLE = new Set(['EAGAIN', 'EBUSY'])

/** Bytes the descriptor has not taken yet, oldest first, with the lines each chunk holds. */
interface Held {
  bytes: Buffer
  readonly lines: number
}

/**
 * Log lines to a file descriptor, gathered for up to FLUSH_MS and written with one write: a
 * write per hundred lines or so instead of one per few lines, and no string re-measured per
 * line (pino's default destination re-reads its whole pending buffer for each line). On a
 * non-blocking pipe or socket the write is synchronous, and what a lagging reader did not
 * take is kept, in order, and tried again shortly. On a descriptor whose writes may block (a
 * file, a terminal) the write goes to libuv's thread pool, one at a time, and lines made
 * meanwhile wait for the next. Either way, past a bound new lines are dropped and counted, so
 * the event loop never waits on the log's reader and memory stays bounded. What is held when
 * the process exits is written then.
 */
export class LineSink {
  readonly #fd: number
  readonly #mayBlock: boolean
  readonly #maxHeldBytes: number
  readonly #retryMs: number
  readonly #schedule: (flush: () => void) => void
  readonly #onFailure: ((err: NodeJS.ErrnoException) => void) | undefined
  /** Lines since the last write. */
  #lines: string[] = []
  #held: Held[] = []
  /** Bytes in #held, and the length of the lines since the last write. */
  #heldBytes = 0
  #scheduled = false
  /** A thread-pool write of every held chunk is under way (descriptors that may block). */
  #writing = false
  /** Counts thread-pool writes given up by flushSync, so their late answers are ignored. */
  #generation = 0
  #failed = false
  #dropped = 0

  constructor(options: LineSinkOptions) {
    this.#fd = options.fd
    this.#mayBlock = options.mayBlock ?? false
    this.#maxHeldBytes = options.maxHeldBytes ?? MAX_HELD_BYTES
    this.#retryMs = options.retryMs ?? RETRY_MS
    this.#schedule = options.schedule ?? flushLater
    this.#onFailure = options.onFailure
    if (sinks.size === 0) process.once('exit', flushAll)
    sinks.add(this)
  }

  /** Lines dropped so far: past the bound, or after a write that failed for good. */
  get dropped(): number {
    return this.#dropped
  }

  /** Its writes go through the thread pool (a descriptor whose writes may block). */
  get mayBlock(): boolean {
    return this.#mayBlock
  }

  /** Takes one line (with its newline); written within FLUSH_MS. */
  write(line: string): boolean {
    if (line.length === 0) return true
    if (this.#heldBytes + line.length > this.#maxHeldBytes) {
      this.#dropped++
      return false
    }
    this.#lines.push(line)
    this.#heldBytes += line.length
    if (!this.#scheduled) {
      this.#scheduled = true
      this.#schedule(this.#flush)
    }
    return true
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    if (this.#mayBlock) this.#startWrite()
    else if (!this.#writeAll()) this.#retryLater()
  }

  #retryLater(): void {
    this.#scheduled = true
    setTimeout(this.#flush, this.#retryMs).unref()
  }

  /** Writes what is held, then the lines since, as far as the descriptor takes them; true when all went. */
  #writeAll(): boolean {
    const count = this.#lines.length
    if (count > 0) {
      const joined = this.#takeLines()
      if (this.#held.length === 0) {
        // The usual case: one string written whole by one call, no Buffer made for it.
        const written = this.#tryWrite(joined)
        if (written === undefined) {
          this.#dropped += count
          return true
        }
        // Measured, not encoded again: a Buffer is made only for a write the descriptor cut short.
        if (written === Buffer.byteLength(joined)) return true
        this.#hold(Buffer.from(joined).subarray(written), count)
      } else {
        this.#hold(Buffer.from(joined), count)
      }
    }
    return this.#writeHeld()
  }

  /** The lines since the last write as one string, no longer counted as held. */
  #takeLines(): string {
    const joined = this.#lines.join('')
    this.#lines = []
    this.#heldBytes -= joined.length
    return joined
  }

  #hold(bytes: Buffer, lines: number): void {
    this.#held.push({ bytes, lines })
    this.#heldBytes += bytes.length
  }

  /** Writes held chunks from the oldest; false when the descriptor is full again. */
  #writeHeld(): boolean {
    while (this.#held.length > 0) {
      const head = this.#held[0] as Held
      const written = this.#tryWrite(head.bytes)
      if (written === undefined) {
        this.#dropHeld()
        return true
      }
      this.#taken(written)
      if (this.#held[0] === head) return false
    }
    return true
  }

  /** Takes `bytes` the descriptor took off the oldest held chunks. */
  #taken(bytes: number): void {
    this.#heldBytes -= bytes
    let left = bytes
    while (this.#held.length > 0) {
      const head = this.#held[0] as Held
      if (left < head.bytes.length) {
        if (left > 0) head.bytes = head.bytes.subarray(left)
        return
      }
      left -= head.bytes.length
      this.#held.shift()
    }
  }

  /**
   * A descriptor that may block: what is held and the lines since go to the thread pool in
   * one write, unless one is under way; lines made meanwhile go with the next flush after it.
   */
  #startWrite(): void {
    if (this.#writing) return
    const count = this.#lines.length
    if (count > 0) this.#hold(Buffer.from(this.#takeLines()), count)
    if (this.#held.length === 0) return
    this.#writing = true
    const generation = this.#generation
    writev(
      this.#fd,
      this.#held.map((chunk) => chunk.bytes),
      (err, bytes) => {
        // Given up by flushSync meanwhile: what it carried is no longer held.
        if (generation === this.#generation) this.#wrote(err, bytes)
      },
    )
  }

  #wrote(err: NodeJS.ErrnoException | null, bytes: number): void {
    this.#writing = false
    if (err === null) this.#taken(bytes)
    else if (err.code !== undefined && RETRYABLE.has(err.code)) {
      // A terminal some other part of the process made non-blocking: try again shortly.
      this.#retryLater()
      return
    } else {
      this.#failedOnce(err)
      this.#dropHeld()
    }
    // What the descriptor did not take goes on at once; lines made meanwhile wait for their
    // flush, as they would have without a write under way.
    if (this.#held.length > 0) this.#startWrite()
    else if (this.#lines.length > 0 && !this.#scheduled) {
      this.#scheduled = true
      this.#schedule(this.#flush)
    }
  }

  /** Bytes the descriptor took (0 when it was full); undefined when the write failed for good. */
  #tryWrite(data: string | Buffer): number | undefined {
    try {
      // Spelled twice for writeSync's two overloads (a string, a buffer).
      return typeof data === 'string' ? writeSync(this.#fd, data) : writeSync(this.#fd, data)
    } catch (err) {
      const error = err as NodeJS.ErrnoException
      if (error.code !== undefined && RETRYABLE.has(error.code)) return 0
      this.#failedOnce(error)
      return undefined
    }
  }

  #failedOnce(error: NodeJS.ErrnoException): void {
    if (this.#failed) return
    this.#failed = true
    this.#onFailure?.(error)
  }

  #dropHeld(): void {
    for (const { bytes, lines } of this.#held) {
      this.#dropped += lines
      this.#heldBytes -= bytes.length
    }
    this.#held = []
  }

  /**
   * Writes everything held now (exit), waiting out a non-blocking descriptor that is full for a
   * bounded time; on one whose writes may block, as long as the write takes. A thread-pool
   * write under way is left to end on its own and what it carries is not written again: if the
   * pool had not started it, it may run as the process ends, after what this writes, so those
   * lines come out last (pino's destination did the same), and a failure of it goes untold.
   */
  flushSync(): void {
    if (this.#writing) {
      for (const { bytes } of this.#held) this.#heldBytes -= bytes.length
      this.#held = []
      this.#writing = false
      this.#generation++
    }
    const giveUpAt = Date.now() + EXIT_WAIT_MS
    const pause = new Int32Array(new SharedArrayBuffer(4))
    while (!this.#writeAll() && Date.now() < giveUpAt) Atomics.wait(pause, 0, 0, 1)
  }
}

function flushLater(flush: () => void): void {
  // Unreferenced: pending lines never keep a process alive; its exit writes them.
  setTimeout(flush, FLUSH_MS).unref()
}

/** Every sink, written out when the process exits (after process.exit() too). */
const sinks = new Set<LineSink>()
function flushAll(): void {
  for (const sink of sinks) sink.flushSync()
}

let stdout: LineSink | null | undefined

/** What standard output is: undefined when it is closed. */
function stdoutKind(): 'stream' | 'may-block' | undefined {
  try {
    const stat = fstatSync(1)
    return stat.isFIFO() || stat.isSocket() ? 'stream' : 'may-block'
  } catch {
    return undefined
  }
}

/**
 * The process's one sink on standard output: every logger writing there shares it, so lines
 * keep their order. On a pipe or a socket (containers, journald, `| tee`), touching
 * process.stdout first makes Node set the descriptor non-blocking, so a reader that lags
 * fills the sink's bound instead of stalling the process. On a file or a terminal, where a
 * write can block (a stalled disk, a paused terminal), the sink writes from the thread pool.
 * A first failed write (a reader that closed its end) is told on stderr, once. Undefined when
 * stdout is closed.
 */
export function stdoutLines(): LineSink | undefined {
  if (stdout === undefined) {
    const kind = stdoutKind()
    stdout = kind === undefined ? null : stdoutSink(kind === 'may-block')
  }
  return stdout ?? undefined
}

function stdoutSink(mayBlock: boolean): LineSink {
  if (!mayBlock) void process.stdout
  return new LineSink({
    fd: 1,
    mayBlock,
    onFailure: (err) => {
      try {
        process.stderr.write(
          `fairlane: a write of log lines to stdout failed (${err.code}); lines that cannot be written are dropped and counted\n`,
        )
      } catch {
        // stderr is gone too: nothing left to tell.
      }
    },
  })
}
