import { fileURLToPath } from 'node:url'

/** examples/quickstart.yaml of this repository: src/ and dist/ sit at the same depth. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(
  new URL('../../../../examples/quickstart.yaml', import.meta.url),
)
