import { createHash, timingSafeEqual } from 'node:crypto'
import type { FairlaneConfig, KeyConfig, WorkspaceConfig } from '@fairlane/config'

/** Who is calling: known only after the key was checked. */
export interface Principal {
  readonly workspaceName: string
  readonly workspace: WorkspaceConfig
  readonly key: KeyConfig
}

interface Entry {
  readonly digest: Buffer
  readonly principal: Principal
}

/**
 * Finds the key a presented secret belongs to. The lookup is by the SHA-256 of the secret,
 * which reveals nothing about the secret through timing; the stored digest is then compared
 * in constant time so that a map hit is never the only check.
 */
export class KeyIndex {
  readonly #byHex = new Map<string, Entry>()
  /**
   * Secrets already proven by the check below, so a key's next request skips the SHA-256.
   * Only keys of this config enter it (never an invalid one), so its size is bounded by the
   * config's keys, and a revocation or reload makes a new index: the cache goes with it.
   * A hit needs the whole secret (the map compares content only on an equal hash, which
   * cannot be aimed at without the key); a miss takes the constant-time path.
   */
  readonly #proven = new Map<string, Principal>()

  constructor(config: FairlaneConfig) {
    for (const [workspaceName, workspace] of Object.entries(config.workspaces)) {
      for (const key of workspace.keys) {
        const hex = key.hash.slice('sha256:'.length)
        this.#byHex.set(hex, {
          digest: Buffer.from(hex, 'hex'),
          principal: { workspaceName, workspace, key },
        })
      }
    }
  }

  authenticate(secret: string): Principal | undefined {
    const proven = this.#proven.get(secret)
    if (proven) return proven
    const digest = createHash('sha256').update(secret, 'utf8').digest()
    const entry = this.#byHex.get(digest.toString('hex'))
    if (!entry || !timingSafeEqual(entry.digest, digest)) return undefined
    this.#proven.set(secret, entry.principal)
    return entry.principal
  }

  get size(): number {
    return this.#byHex.size
  }
}

const indexes = new WeakMap<FairlaneConfig, KeyIndex>()

/** One index per config snapshot: built on first use after a reload, then shared. */
export function keyIndexOf(config: FairlaneConfig): KeyIndex {
  let index = indexes.get(config)
  if (!index) {
    index = new KeyIndex(config)
    indexes.set(config, index)
  }
  return index
}
