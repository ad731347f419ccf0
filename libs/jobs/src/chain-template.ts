/**
 * Follow-up templates: `{{previous.<path>}}` in any string of a follow-up job takes a value of
 * the finished job's document (`previous.id`, `previous.state`, `previous.response.status`,
 * `previous.response.body.order.id`, `previous.response.body.items[0].sku`). A string that is
 * one template alone takes the value as it is (a number stays a number in a JSON body);
 * inside a longer string it is written as text, objects as JSON. A path that leads nowhere is
 * null alone and empty text inside a string. Paths are property names and indexes only: no
 * code is evaluated.
 */

const TEMPLATE = /\{\{\s*previous((?:\.[A-Za-z_$][\w$-]*|\[\d+\])*)\s*\}\}/g
const WHOLE = /^\{\{\s*previous((?:\.[A-Za-z_$][\w$-]*|\[\d+\])*)\s*\}\}$/
const STEP = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]/g

function lookup(root: unknown, path: string): unknown {
  let value: unknown = root
  for (const [, name, index] of path.matchAll(STEP)) {
    if (value === null || typeof value !== 'object') return undefined
    const key = name ?? Number(index)
    if (!Object.hasOwn(value, key)) return undefined
    value = (value as Record<string | number, unknown>)[key]
  }
  return value
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** A JSON value with every template filled from `previous`. */
export function fillTemplates(value: unknown, previous: unknown): unknown {
  return fill(value, previous)
}

/** A string (a path, a URL, a header) with every template written as text. */
export function fillText(value: string, previous: unknown): string {
  return value.replace(TEMPLATE, (_, path: string) => asText(lookup(previous, path)))
}

function fill(value: unknown, previous: unknown): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value)
    if (whole) return lookup(previous, whole[1] ?? '') ?? null
    return fillText(value, previous)
  }
  if (Array.isArray(value)) return value.map((v) => fill(v, previous))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = fill(v, previous)
    return out
  }
  return value
}
