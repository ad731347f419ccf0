import type { IncomingHttpHeaders } from 'node:http'

export interface PresentedKey {
  readonly secret: string
  /** X-Fairlane-Key leaves Authorization free to carry the client's own upstream credential. */
  readonly via: 'x-fairlane-key' | 'authorization'
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

export function presentedKey(headers: IncomingHttpHeaders): PresentedKey | undefined {
  const header = headers['x-fairlane-key']
  if (typeof header === 'string' && header.trim() !== '') {
    return { secret: header.trim(), via: 'x-fairlane-key' }
  }
  const match = BEARER.exec(headers.authorization ?? '')
  return match?.[1] ? { secret: match[1], via: 'authorization' } : undefined
}
