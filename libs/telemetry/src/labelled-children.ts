/**
 * Metric children by two label values, in nested maps: the request path finds its child
 * without building a key string or asking prom-client to hash a label object. Bounded by the
 * label sets the callers use (config names, fixed enums).
 */
export class LabelledChildren<T> {
  readonly #children = new Map<string, Map<string, T>>()

  get(a: string, b: string, make: () => T): T {
    let inner = this.#children.get(a)
    if (!inner) {
      inner = new Map()
      this.#children.set(a, inner)
    }
    let child = inner.get(b)
    if (child === undefined) {
      child = make()
      inner.set(b, child)
    }
    return child
  }
}
