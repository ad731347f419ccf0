import { fileURLToPath } from 'node:url'

/** The monorepo root, for launching services by their source path. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Git-ignored; every run writes here and nothing else reads it. */
export const RESULTS_DIR = fileURLToPath(new URL('../../results/', import.meta.url))
