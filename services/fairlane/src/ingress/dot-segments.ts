/**
 * Whether a target-form path holds a segment that an upstream server could read as `.` or
 * `..` and so climb out of the endpoint's base path (`/t/api/../admin`). Upstreams differ in
 * what they normalise, so this refuses every spelling that common servers and frameworks
 * turn into a dot segment, not only the RFC 3986 ones:
 * - percent-encoding, decoded up to three times (`%2e`, `%252e`, `%25252e`), IIS's `%u002e`,
 *   and the overlong UTF-8 forms old decoders accept (`%c0%ae`);
 * - `/` and `\` as separators, encoded or not (WHATWG parsers and Windows servers split on `\`);
 * - path parameters: Tomcat, Jetty and Spring read `..;x=1` as `..`;
 * - a NUL, where C code ends the name (`..%00`), and whitespace or control characters that
 *   get trimmed (`..%20`, `..%09`);
 * - Unicode dots that compatibility normalisation (NFKC) or IDNA-style mapping makes `.`:
 *   fullwidth `．`, `․`, `﹒`, `。`, `｡`;
 * - a segment of dots only (`...`): Windows drops trailing dots from a name.
 */
export function hasDotSegment(path: string): boolean {
  if (!MAYBE_DOTS.test(path)) return false
  let form = path
  for (let decodings = 0; ; decodings++) {
    if (form.split(SEPARATOR).some(readsAsDots)) return true
    if (decodings === MAX_DECODINGS) return false
    const next = decodeOnce(form)
    if (next === form) return false
    form = next
  }
}

const MAX_DECODINGS = 3
/** A path with none of these cannot spell a dot in any form below. */
const MAYBE_DOTS = /[.%\u0080-\uffff]/
const SEPARATOR = /[\\/]/
const OVERLONG_DOT = /%c0%ae|%e0%80%ae|%f0%80%80%ae/gi
const IIS_ESCAPE = /%u([0-9a-f]{4})/gi
const ESCAPE_RUN = /(?:%[0-9a-f]{2})+/gi
const IDEOGRAPHIC_STOPS = /[\u3002\uff61]/g
const TRIMMED = /^[\s\p{Cc}]+|[\s\p{Cc}]+$/gu
const DOTS = /^\.+$/

/** One round of percent-decoding, as UTF-8; escapes that are not valid stay as written. */
function decodeOnce(text: string): string {
  return text
    .replace(OVERLONG_DOT, '.')
    .replace(IIS_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    .replace(ESCAPE_RUN, (run) => Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'))
}

function readsAsDots(segment: string): boolean {
  const name = (segment.normalize('NFKC').replace(IDEOGRAPHIC_STOPS, '.').split(';', 1)[0] ?? '')
    .split('\0', 1)[0]
    ?.replace(TRIMMED, '')
  return name !== undefined && DOTS.test(name)
}
