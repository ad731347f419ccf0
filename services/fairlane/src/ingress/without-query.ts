/**
 * A query string can hold a secret (`?api_key=…`), and error messages from parsers and
 * libraries quote the URL they failed on. Every text that reaches a problem detail or a log
 * line goes through this, whichever error produced it.
 */
const QUERY = /\?[^\s"'`<>]+/g

export function withoutQuery(text: string): string {
  return text.replace(QUERY, '?[query removed]')
}
