import { describe, expect, it } from 'vitest'
import { resolveReferences, type ReferenceIssue } from './env-references.ts'

function resolve(value: unknown, env: Record<string, string>) {
  const issues: ReferenceIssue[] = []
  return { value: resolveReferences(value, env, issues), issues }
}

describe('env references', () => {
  it('substitutes ${VAR} and ${VAR:-default} inside strings', () => {
    const { value, issues } = resolve(
      { a: 'Bearer ${TOKEN}', b: '${MISSING:-http://127.0.0.1:8089}', c: ['x${TOKEN}y'] },
      { TOKEN: 's3cr:et#1' },
    )
    expect(issues).toEqual([])
    expect(value).toEqual({ a: 'Bearer s3cr:et#1', b: 'http://127.0.0.1:8089', c: ['xs3cr:et#1y'] })
  })

  it('always substitutes text: the schema decides what type the value is read as', () => {
    const { value } = resolve({ port: '${PORT:-8080}', version: '${V}' }, { V: '2' })
    expect(value).toEqual({ port: '8080', version: '2' })
  })

  it('treats an empty variable as unset, so the default applies', () => {
    expect(resolve('${X:-fallback}', { X: '' }).value).toBe('fallback')
  })

  it('keeps $${ as a literal ${', () => {
    expect(resolve('cost $${X}', {}).value).toBe('cost ${X}')
  })

  it('reports an unset variable and a malformed reference with their paths', () => {
    const { issues } = resolve({ targets: { a: { h: ['${NOPE}', '${bad-name}'] } } }, {})
    expect(issues).toEqual([
      { path: ['targets', 'a', 'h', 0], message: 'environment variable NOPE is not set' },
      { path: ['targets', 'a', 'h', 1], message: expect.stringContaining('malformed') },
    ])
  })
})
