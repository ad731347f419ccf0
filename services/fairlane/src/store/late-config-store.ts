import type { FairlaneConfig } from '@fairlane/config'
import { FairlaneError } from '@fairlane/protocol'
import type { EditableConfigStore, StoreView } from './redis-config-store.ts'

/**
 * The cluster's config store for the admin API, which is up before the store is open (a node
 * waiting for Redis still answers its admin port): until `open` every call is refused with
 * 503 store_unavailable.
 */
export class LateConfigStore implements EditableConfigStore {
  #store: EditableConfigStore | undefined

  open(store: EditableConfigStore): void {
    this.#store = store
  }

  current(): FairlaneConfig {
    return this.#opened().current()
  }

  subscribe(listener: (config: FairlaneConfig) => void): () => void {
    return this.#opened().subscribe(listener)
  }

  view(): StoreView {
    return this.#opened().view()
  }

  change: EditableConfigStore['change'] = (edit) => this.#opened().change(edit)

  #opened(): EditableConfigStore {
    if (this.#store) return this.#store
    throw new FairlaneError(
      'store_unavailable',
      'admin',
      'the node is still starting: the config store is not open yet',
      { headers: { 'retry-after': '1' } },
    )
  }
}
