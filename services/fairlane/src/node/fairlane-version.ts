import { readFileSync } from 'node:fs'

/**
 * The version of this Fairlane, from its package.json: one level above `src/` and `dist/`
 * alike, so the source run and the built one read the same file.
 */
export const FAIRLANE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version
