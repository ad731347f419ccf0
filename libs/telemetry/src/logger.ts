import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino'
import { stdoutLines } from './line-sink.ts'

export type { Logger }

/**
 * Paths that could carry a secret if someone ever logged a header bag or a request object.
 * Request logs are built from named safe fields (see the ingress), so this is the second
 * line of defence, not the first: redaction by configuration, not by hope.
 */
export const REDACTED_PATHS: readonly string[] = [
  'headers.authorization',
  'headers["x-fairlane-key"]',
  'headers.cookie',
  'headers["proxy-authorization"]',
  '*.headers.authorization',
  '*.headers["x-fairlane-key"]',
  '*.headers.cookie',
  '*.headers["proxy-authorization"]',
  'key',
  'secret',
  'token',
  'password',
  'body',
  'query',
  '*.key',
  '*.secret',
  '*.token',
  '*.password',
  '*.body',
  '*.query',
]

export interface LoggerOptions {
  level: LevelWithSilent
  /**
   * Where JSON lines go; when omitted, standard output, through the process's one LineSink
   * (pino's own destination only when stdout is closed). Tests pass a stream to capture
   * output.
   */
  destination?: DestinationStream
  base?: Record<string, unknown>
}

interface RequestLike {
  method?: string
  url?: string
}

/**
 * Libraries log request objects on their own (Fastify on a stream error, say); this keeps
 * only the method and the path, since a query string can carry a secret.
 */
function safeRequest(req: RequestLike): { method?: string; path?: string } {
  const url = req.url ?? ''
  const q = url.indexOf('?')
  return { method: req.method, path: q === -1 ? url : url.slice(0, q) }
}

let isoMs = Number.NaN
let isoField = ''

/**
 * pino's isoTime, made once per millisecond: under load several lines share one, and a Date
 * and its ISO string per line were a visible share of a request line's cost.
 */
function isoTime(): string {
  const now = Date.now()
  if (now !== isoMs) {
    isoMs = now
    isoField = `,"time":"${new Date(now).toISOString()}"`
  }
  return isoField
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'fairlane', ...options.base },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      serializers: { req: safeRequest, err: pino.stdSerializers.err, res: () => undefined },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // A silent logger writes nothing: no sink, and stdout left as it is.
    options.destination ?? (options.level === 'silent' ? undefined : stdoutLines()),
  )
}

/** A request line's fields: named scalars only, none of them a redacted path. */
export type LineFields = Readonly<Record<string, string | number | boolean | undefined>>

// pino's own symbols (exported as `pino.symbols`) for what makes its lines: the serialized
// level, the time function, the bindings, the stream and the line's end.
const {
  lsCacheSym,
  timeSym,
  chindingsSym,
  streamSym,
  endSym,
  messageKeySym,
  needsMetadataGsym,
  mixinSym,
  formattersSym,
  hooksSym,
  nestedKeySym,
} = pino.symbols

/** A pino logger's internals as its symbols expose them (pino's types do not list them). */
type PinoInternals = Record<symbol, unknown>

/** What JSON.stringify escapes in a string (any surrogate: a lone one is escaped, a pair not). */
// eslint-disable-next-line no-control-regex -- the control characters are what JSON escapes
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/

/**
 * One JSON value as pino writes it: non-finite numbers are null. A string with nothing to
 * escape (ids, names, paths: nearly every field of a request line) is quoted as it is,
 * which costs about half of JSON.stringify per field.
 */
function jsonValue(value: string | number | boolean): string {
  if (typeof value === 'string')
    return ESCAPED.test(value) ? JSON.stringify(value) : '"' + value + '"'
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null'
  return value ? 'true' : 'false'
}

/** A field's name as a line writes it: before any value, and before a string's first quote. */
interface FieldOpening {
  readonly named: string
  readonly quoted: string
}

/**
 * Request lines in the logger's own format and destination, without redaction: a line is
 * made of a closed set of named scalar fields, none a redacted path (the ingress's
 * request-log test holds it to that), so redaction could never change one. The line is
 * serialized here from the fields in one pass, as pino would write it (level, time,
 * bindings, fields, message) and written to the logger's stream: pino's general path,
 * built for any object (serializers, per-key stringifiers, property checks), cost a share of
 * every request (docs/performance.md has the figures). A logger with anything that changes lines (a mixin, a log formatter,
 * a nested key, a message prefix, a write hook, or a stream that wants each line's metadata)
 * is written through pino itself.
 */
export class RequestLines {
  readonly #logger: Logger
  readonly #internals: PinoInternals
  readonly #direct: boolean
  readonly #info: number
  /**
   * `,"key":` and `,"key":"` per field name, made once: a line is made of fewer pieces, which
   * the sink's join then walks, and each costs a concatenation less. Keys are the lines' own
   * field names, a closed set in the code (identifiers: nothing to escape).
   */
  readonly #openings = new Map<string, FieldOpening>()

  constructor(logger: Logger) {
    this.#logger = logger.child({}, { redact: { paths: [], censor: '[redacted]' } })
    this.#internals = this.#logger as unknown as PinoInternals
    const internals = this.#internals
    this.#info = this.#logger.levels.values['info'] ?? 30
    const formatters = internals[formattersSym] as { log?: unknown } | undefined
    const hooks = internals[hooksSym] as { streamWrite?: unknown } | undefined
    const stream = internals[streamSym] as PinoInternals
    this.#direct =
      !internals[mixinSym] &&
      !formatters?.log &&
      !hooks?.streamWrite &&
      !internals[nestedKeySym] &&
      !this.#logger.msgPrefix &&
      stream[needsMetadataGsym] !== true
  }

  /** Info lines are on (the level may change with a config reload). */
  get enabled(): boolean {
    return this.#logger.isLevelEnabled('info')
  }

  #opening(key: string): FieldOpening {
    let opening = this.#openings.get(key)
    if (opening === undefined) {
      opening = { named: ',"' + key + '":', quoted: ',"' + key + '":"' }
      this.#openings.set(key, opening)
    }
    return opening
  }

  /**
   * Writes one info line of `fields` and `msg`; fields that are undefined are left out. The
   * keys must be field names from the code, a closed set of identifiers: they are written
   * unescaped, and each is kept with its opening.
   */
  write(fields: LineFields, msg: string): void {
    if (!this.#direct) {
      this.#logger.info(fields, msg)
      return
    }
    const internals = this.#internals
    const levels = internals[lsCacheSym] as Record<number, string>
    const time = (internals[timeSym] as () => string)()
    let line = (levels[this.#info] as string) + time + (internals[chindingsSym] as string)
    for (const key in fields) {
      const value = fields[key]
      if (value === undefined) continue
      const opening = this.#opening(key)
      if (typeof value !== 'string') line += opening.named + jsonValue(value)
      else if (ESCAPED.test(value)) line += opening.named + JSON.stringify(value)
      else line += opening.quoted + value + '"'
    }
    line += ',"' + (internals[messageKeySym] as string) + '":' + JSON.stringify(msg)
    ;(internals[streamSym] as { write(line: string): void }).write(
      line + (internals[endSym] as string),
    )
  }
}
