import { formatPath, type ConfigIssue } from './config-error.ts'

/** Far deeper than any valid config (about 7 levels), far shallower than the call stack. */
const MAX_CONFIG_DEPTH = 32

/** Enough of a runaway path to find it in the file. */
const SHOWN_PATH_PARTS = 4

/**
 * Problems of a parsed document that must be found before anything walks it: the walkers
 * that resolve references and fill defaults recurse (a deeply nested document would end in
 * a RangeError), and copying a `__proto__` key sets the copy's prototype instead of a key,
 * so the key would vanish instead of being reported. Iterative, so any depth is safe here.
 */
export function structureIssues(value: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const pending: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }]
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value: item, path } = next
    if (item === null || typeof item !== 'object') continue
    if (path.length >= MAX_CONFIG_DEPTH) {
      const shown = formatPath(path.slice(0, SHOWN_PATH_PARTS))
      issues.push({ path: `${shown}…`, message: `nested deeper than ${MAX_CONFIG_DEPTH} levels` })
      continue
    }
    const entries: [string | number, unknown][] = Array.isArray(item)
      ? item.map((child, i) => [i, child])
      : Object.entries(item)
    for (const [key, child] of entries) {
      if (key === '__proto__')
        issues.push({ path: formatPath(path), message: 'unknown key "__proto__"' })
      else pending.push({ value: child, path: [...path, key] })
    }
  }
  return issues
}
