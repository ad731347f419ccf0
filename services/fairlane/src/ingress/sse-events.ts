import { Transform, type TransformCallback } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'

/** An event larger than this is not inspected: the scanner passes the rest through untouched. */
const MAX_EVENT_CHARS = 1024 * 1024

const BOUNDARY = /\r?\n\r?\n|\r\r/

/** The JSON of an event's data lines, or undefined (none, `[DONE]`, not JSON, no `hint` in it). */
function eventJson(event: string, hint: string): unknown {
  if (!event.includes(hint)) return undefined
  let data = ''
  for (const line of event.split(/\r?\n|\r/)) {
    if (!line.startsWith('data:')) continue
    const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5)
    data = data === '' ? value : `${data}\n${value}`
  }
  if (data === '' || data === '[DONE]') return undefined
  try {
    return JSON.parse(data)
  } catch {
    return undefined
  }
}

/**
 * Reads the events of a server-sent event stream as they pass (RFC 8895 framing: events end
 * at a blank line). `onEvent` sees the JSON data of each event that contains `hint`, and says
 * whether the event goes on to the client. When nothing may be dropped every chunk passes at
 * once and the events are read from a copy; otherwise each event passes when it is complete.
 */
export class SseEvents extends Transform {
  readonly #hint: string
  readonly #onEvent: (json: unknown) => boolean
  readonly #mayDrop: boolean
  readonly #decoder = new StringDecoder('utf8')
  #pending = ''
  #gaveUp = false

  constructor(hint: string, mayDrop: boolean, onEvent: (json: unknown) => boolean) {
    super()
    this.#hint = hint
    this.#mayDrop = mayDrop
    this.#onEvent = onEvent
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#mayDrop || this.#gaveUp) this.push(chunk)
    if (this.#gaveUp) return callback()
    this.#pending += this.#decoder.write(chunk)
    for (let match = BOUNDARY.exec(this.#pending); match; match = BOUNDARY.exec(this.#pending)) {
      const end = match.index + match[0].length
      const event = this.#pending.slice(0, end)
      this.#pending = this.#pending.slice(end)
      const keep = this.#inspect(event.slice(0, match.index))
      if (this.#mayDrop && keep) this.push(event)
    }
    if (this.#pending.length > MAX_EVENT_CHARS) {
      this.#gaveUp = true
      if (this.#mayDrop) this.push(this.#pending)
      this.#pending = ''
    }
    callback()
  }

  override _flush(callback: TransformCallback): void {
    const rest = this.#gaveUp ? '' : this.#pending + this.#decoder.end()
    if (rest !== '') {
      const keep = this.#inspect(rest)
      if (this.#mayDrop && keep) this.push(rest)
    }
    callback()
  }

  #inspect(event: string): boolean {
    const json = eventJson(event, this.#hint)
    return json === undefined || this.#onEvent(json)
  }
}

/** The JSON of every event of a whole stream already read that contains `hint`. */
export function eventsOf(text: string, hint: string): unknown[] {
  const found: unknown[] = []
  for (const event of text.split(BOUNDARY)) {
    const json = eventJson(event, hint)
    if (json !== undefined) found.push(json)
  }
  return found
}

export function isEventStream(headers: Record<string, string | string[] | undefined>): boolean {
  return String(headers['content-type'] ?? '').startsWith('text/event-stream')
}
