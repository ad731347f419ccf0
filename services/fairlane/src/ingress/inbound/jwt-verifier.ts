import { readFile } from 'node:fs/promises'
import type { JwtConfig } from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import {
  createLocalJWKSet,
  errors,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'

type VerifyKey = Uint8Array | CryptoKey | JWTVerifyGetKey

/**
 * Keys per jwt config object: a reload that changes the jwt block (or re-reads the config)
 * makes a new object, so its keys, and a JWKS file's content, are loaded afresh; unchanged
 * snapshots reuse them. A failed load is not kept: the next request tries again.
 */
const keys = new WeakMap<JwtConfig, Promise<VerifyKey>>()

async function loadKey(jwt: JwtConfig): Promise<VerifyKey> {
  if (jwt.algorithm === 'HS256') return new TextEncoder().encode(jwt.secret ?? '')
  if (jwt.publicKey !== undefined) return importSPKI(jwt.publicKey, jwt.algorithm)
  const text = await readFile(jwt.jwksFile ?? '', 'utf8')
  return createLocalJWKSet(JSON.parse(text) as JSONWebKeySet)
}

function keyOf(jwt: JwtConfig): Promise<VerifyKey> {
  let key = keys.get(jwt)
  if (!key) {
    key = loadKey(jwt)
    keys.set(jwt, key)
    key.catch(() => keys.delete(jwt))
  }
  return key
}

/**
 * The verified claims of a token, or 401 caller_unauthenticated: a bad signature, another
 * algorithm than the configured one (so `none` and HS/RS confusion never pass), a wrong
 * issuer or audience, an expired or not-yet-valid token. A key that cannot be loaded (a
 * missing JWKS file) is Fairlane's fault: 500 internal.
 */
export async function verifyToken(jwt: JwtConfig, token: string): Promise<JWTPayload> {
  let key: VerifyKey
  try {
    key = await keyOf(jwt)
  } catch (err) {
    throw new FairlaneError('internal', 'authenticate', 'the route’s JWT key could not be loaded', {
      cause: err,
    })
  }
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: [jwt.algorithm],
      clockTolerance: jwt.clockToleranceSeconds,
      ...(jwt.issuer !== undefined ? { issuer: jwt.issuer } : {}),
      ...(jwt.audience !== undefined ? { audience: jwt.audience } : {}),
    })
    return payload
  } catch (err) {
    if (!(err instanceof errors.JOSEError)) throw err
    const detail =
      err instanceof errors.JWTExpired
        ? 'the token has expired'
        : err instanceof errors.JWTClaimValidationFailed
          ? `the token's ${err.claim} claim is not accepted`
          : 'the token is not valid'
    throw new FairlaneError('caller_unauthenticated', 'authenticate', detail)
  }
}
