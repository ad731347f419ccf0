import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** The installed version of a package the bench depends on; undefined when it is missing. */
export function packageVersion(name: string): string | undefined {
  try {
    return (require(`${name}/package.json`) as { version: string }).version
  } catch {
    return undefined
  }
}
