import { FairlaneError } from '@fairlane/protocol'
import { keyIndexOf } from '../../keys/key-index.ts'
import type { Exchange } from '../exchange.ts'
import { presentedKey } from '../presented-key.ts'

/**
 * Stage 2: the presented key against the config snapshot's key index. A revoked or deleted
 * key is gone from the next snapshot, and every request reads the current one: it is
 * refused on the next request.
 */
export function authenticate(x: Exchange): void {
  x.stage = 'authenticate'
  const presented = presentedKey(x.req.headers)
  if (!presented) {
    throw new FairlaneError(
      'unauthenticated',
      'authenticate',
      'send the key as Authorization: Bearer <key> or X-Fairlane-Key',
    )
  }
  const principal = keyIndexOf(x.config).authenticate(presented.secret)
  if (!principal)
    throw new FairlaneError('unauthenticated', 'authenticate', 'unknown or revoked key')
  x.presented = presented
  x.principal = principal
  x.workspace = principal.workspaceName
  x.keyId = principal.key.id
}
