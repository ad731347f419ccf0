import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Whether an Authorization header carries the admin token. Both sides are hashed first so
 * the comparison is constant-time whatever their lengths, and reveals nothing through
 * timing about how much of a guess was right.
 */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  if (!match) return false
  return timingSafeEqual(digest(match[1] as string), digest(token))
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}
