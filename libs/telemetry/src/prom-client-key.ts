/**
 * The key prom-client (15.1.3, pinned) files a label set's values under, as its `hashObject`
 * makes it: each label name, in sorted order, with its value, those left undefined skipped.
 */
export function promClientKey(
  names: readonly string[],
  labels: Readonly<Record<string, unknown>>,
): string {
  let key = ''
  for (const name of names) {
    const value = labels[name]
    if (value !== undefined) key += `${name}:${String(value)},`
  }
  return key
}
