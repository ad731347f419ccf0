import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino'

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
  /** Where JSON lines go; stdout when omitted. Tests pass a stream to capture output. */
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
    options.destination,
  )
}

/**
 * The logger for request lines: the same destination, level and format, without redaction.
 * A request line is built from a closed set of named scalar fields, none a redacted path
 * (the ingress's request-log test checks it), so redaction could never change one; its
 * wildcard paths were tried on every field and cost most of the line's CPU.
 */
export function requestLineLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: [], censor: '[redacted]' } })
}
