/**
 * A reader of the part of the structured-field grammar (RFC 8941) that rate-limit fields use:
 * the members of a List or Dictionary, each a bare item with parameters. Shared by the
 * upstream's `RateLimit`/`RateLimit-Policy` (upstream-signals.ts) and the client's
 * `Fairlane-RateLimit-Policy` (client-policy.ts); each decides what a member means.
 *
 * Lenient where the RFC is strict, so a sender's small slips do not hide its limits: names
 * are read in any case (and returned lower-cased), spaces may stand around `;`, and a token
 * may start with a digit, `_` or `.` (`s=2024-q1`). A member that still does not parse comes
 * back as undefined and the other members are kept, rather than the whole field failing.
 * Nothing here throws.
 */

/** Tokens and strings alike are strings; a byte sequence is its base64 text; `?1` is true. */
export type BareItem = number | string | boolean

export interface Member {
  /** Set for a dictionary member (`limit=100`); undefined for a list item. */
  readonly key?: string
  /** Undefined for an inner list, which no rate-limit field uses: its content is skipped. */
  readonly value: BareItem | undefined
  /** Each parameter's first value; a parameter without a value is true. */
  readonly params: ReadonlyMap<string, BareItem>
  /** The first parameter name given more than once, for readers that refuse repeats. */
  readonly repeatedParam?: string
}

/**
 * The first `max` members of `text` (an SF List or Dictionary), in order; undefined where a
 * member does not parse. Members past `max` are not read, so a huge field costs no more.
 */
export function readMembers(text: string, max: number): (Member | undefined)[] {
  return splitTopLevel(text, max).map((raw) => parseMember(raw.trim()))
}

/** Splits at commas outside strings and inner lists, stopping after `max` parts. */
function splitTopLevel(text: string, max: number): string[] {
  const out: string[] = []
  let start = 0
  let inString = false
  let depth = 0
  for (let i = 0; i < text.length && out.length < max; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '(') depth++
    else if (c === ')') depth = Math.max(0, depth - 1)
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i))
      start = i + 1
    }
  }
  if (out.length < max) out.push(text.slice(start))
  return out
}

const TOKEN = /^[a-z0-9_.*][a-z0-9!#$%&'*+\-.^_`|~:/]*/i
const KEY = /^[a-z*][a-z0-9_\-.*]*$/i
const PARAM_NAME = /^[a-z*][a-z0-9_\-.*]*/i
const NUMBER = /^-?\d+(?:\.\d+)?/
/** What may follow a number: anything else makes the run a token (`2024-q1`). */
const AFTER_NUMBER = /^(?:$|[;,=)\s])/

interface Cursor {
  readonly text: string
  pos: number
}

function parseMember(text: string): Member | undefined {
  const cursor: Cursor = { text, pos: 0 }
  let key: string | undefined
  let value: BareItem | undefined
  if (text.startsWith('(')) {
    const close = text.indexOf(')')
    if (close < 0) return undefined
    cursor.pos = close + 1
  } else {
    const item = readBareItem(cursor)
    if (item === undefined) return undefined
    value = item.value
    if (item.token && text[cursor.pos] === '=' && KEY.test(String(item.value))) {
      key = String(item.value).toLowerCase()
      cursor.pos++
      const inner = readBareItem(cursor)
      if (inner === undefined) return undefined
      value = inner.value
    }
  }
  const params = new Map<string, BareItem>()
  let repeatedParam: string | undefined
  while (cursor.pos < text.length) {
    skipSpaces(cursor)
    if (text[cursor.pos] !== ';') break
    cursor.pos++
    skipSpaces(cursor)
    const name = PARAM_NAME.exec(text.slice(cursor.pos))?.[0]?.toLowerCase()
    if (name === undefined) return undefined
    cursor.pos += name.length
    let paramValue: BareItem = true
    if (text[cursor.pos] === '=') {
      cursor.pos++
      const item = readBareItem(cursor)
      if (item === undefined) return undefined
      paramValue = item.value
    }
    if (!params.has(name)) params.set(name, paramValue)
    else repeatedParam ??= name
  }
  skipSpaces(cursor)
  if (cursor.pos !== text.length) return undefined
  return {
    ...(key !== undefined && { key }),
    value,
    params,
    ...(repeatedParam !== undefined && { repeatedParam }),
  }
}

function skipSpaces(cursor: Cursor): void {
  while (cursor.text[cursor.pos] === ' ' || cursor.text[cursor.pos] === '\t') cursor.pos++
}

function readBareItem(cursor: Cursor): { value: BareItem; token: boolean } | undefined {
  const rest = cursor.text.slice(cursor.pos)
  const c = rest[0]
  if (c === '"') return readString(cursor, rest)
  if (c === '?') {
    if (rest[1] !== '0' && rest[1] !== '1') return undefined
    cursor.pos += 2
    return { value: rest[1] === '1', token: false }
  }
  if (c === ':') {
    const close = rest.indexOf(':', 1)
    if (close < 0) return undefined
    cursor.pos += close + 1
    return { value: rest.slice(1, close), token: false }
  }
  const number = NUMBER.exec(rest)?.[0]
  if (number !== undefined && AFTER_NUMBER.test(rest.slice(number.length))) {
    cursor.pos += number.length
    return { value: Number(number), token: false }
  }
  const token = TOKEN.exec(rest)?.[0]
  if (token !== undefined) {
    cursor.pos += token.length
    return { value: token, token: true }
  }
  return undefined
}

/** An SF String: only `\"` and `\\` are escapes; an unterminated string does not parse. */
function readString(cursor: Cursor, rest: string): { value: string; token: false } | undefined {
  let out = ''
  for (let i = 1; i < rest.length; i++) {
    const ch = rest[i]
    if (ch === '\\') {
      const next = rest[i + 1]
      if (next !== '"' && next !== '\\') return undefined
      out += next
      i++
    } else if (ch === '"') {
      cursor.pos += i + 1
      return { value: out, token: false }
    } else {
      out += ch
    }
  }
  return undefined
}
