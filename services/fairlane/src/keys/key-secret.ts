import { createHash, randomBytes } from 'node:crypto'

/** Prefix of every Fairlane key, so a leaked one is recognisable by secret scanners. */
const KEY_PREFIX = 'fl_'

/** 24 random bytes (192 bits), base64url: long enough that guessing is hopeless. */
export function newKeySecret(): string {
  return KEY_PREFIX + randomBytes(24).toString('base64url')
}

/** The form stored in config: `sha256:<hex>`. Keys are high-entropy, so a plain hash suffices. */
export function hashKeySecret(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret, 'utf8').digest('hex')
}
