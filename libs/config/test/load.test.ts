import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, FileConfigStore, loadConfigFile, rateSpec } from '@fairlane/config'

async function file(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-config-'))
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

async function issuesOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`)
    throw err
  }
  return []
}

describe('loadConfigFile', () => {
  it('reads YAML with env references', async () => {
    const path = await file(
      'a.yaml',
      'server:\n  port: ${PORT:-8181}\ntargets:\n  echo:\n    endpoints:\n      - url: ${ECHO_URL:-http://127.0.0.1:8089}\n    upstreamHeaders:\n      authorization: Bearer ${TOKEN}\n',
    )
    const config = await loadConfigFile(path, { TOKEN: 'tok' })
    expect(config.server.port).toBe(8181)
    expect(config.targets['echo']?.endpoints[0]?.url).toBe('http://127.0.0.1:8089')
    expect(config.targets['echo']?.upstreamHeaders['authorization']).toBe('Bearer tok')
  })

  it('reads JSON', async () => {
    const path = await file('a.json', JSON.stringify({ server: { port: 1234 } }))
    expect((await loadConfigFile(path, {})).server.port).toBe(1234)
  })

  it('lists reference and schema problems together', async () => {
    const path = await file(
      'b.yaml',
      'targets:\n  echo:\n    endpoints:\n      - url: api.openai.com\n    upstreamHeaders:\n      authorization: Bearer ${TOKEN}\n',
    )
    expect(await issuesOf(loadConfigFile(path, {}))).toEqual([
      'targets.echo.upstreamHeaders.authorization: environment variable TOKEN is not set',
      'targets.echo.endpoints[0].url: must be an absolute http(s) URL (got "api.openai.com")',
    ])
  })

  it('says where YAML cannot be parsed, and refuses duplicate keys', async () => {
    const broken = await issuesOf(
      loadConfigFile(await file('c.yaml', 'server:\n  port: [1,\n'), {}),
    )
    expect(broken[0]).toMatch(/^line \d+, column \d+: cannot parse/)
    const duplicate = await issuesOf(
      loadConfigFile(await file('d.yaml', 'server: {}\nserver: {}\n'), {}),
    )
    expect(duplicate[0]).toMatch(/cannot parse/)
  })

  it('reports __proto__ keys by path instead of dropping them', async () => {
    const yaml = await file('p.yaml', '__proto__: { port: 1 }\nserver:\n  __proto__: {}\n')
    expect((await issuesOf(loadConfigFile(yaml, {}))).sort()).toEqual([
      ': unknown key "__proto__"',
      'server: unknown key "__proto__"',
    ])
    const json = await file('p.json', '{"targets": {"echo": {"__proto__": {"x": 1}}}}')
    expect(await issuesOf(loadConfigFile(json, {}))).toEqual([
      'targets.echo: unknown key "__proto__"',
    ])
  })

  it('reports a deeply nested document by path instead of overflowing the stack', async () => {
    const depth = 20_000
    const path = await file('deep.json', `{"limits": ${'['.repeat(depth)}${']'.repeat(depth)}}`)
    expect(await issuesOf(loadConfigFile(path, {}))).toEqual([
      'limits[0][0][0]…: nested deeper than 32 levels',
    ])
  })

  it('refuses CR, LF and control characters in upstream header values, literal or from ${ENV}', async () => {
    const path = await file(
      'h.yaml',
      'targets:\n  echo:\n    endpoints: [{ url: "https://api.example.com" }]\n    upstreamHeaders:\n      x-literal: "a\\r\\nX-Injected: 1"\n      authorization: Bearer ${TOKEN}\n      x-fine: "tab\\tand caf\u00e9"\n',
    )
    const issues = await issuesOf(loadConfigFile(path, { TOKEN: 'sk-secret\n' }))
    expect(issues).toEqual([
      expect.stringMatching(/^targets\.echo\.upstreamHeaders\.x-literal: must not contain CR, LF/),
      expect.stringMatching(
        /^targets\.echo\.upstreamHeaders\.authorization: must not contain CR, LF/,
      ),
    ])
    expect(issues.join('\n')).not.toContain('sk-secret')
  })

  it('names a missing file', async () => {
    expect(await issuesOf(loadConfigFile('/nonexistent/fairlane.yaml', {}))).toEqual([
      ': cannot read file (ENOENT)',
    ])
  })
})

describe('FileConfigStore', () => {
  it('applies a valid reload and keeps the old config on an invalid one', async () => {
    const path = await file('e.yaml', 'server:\n  port: 1\n')
    const store = await FileConfigStore.open(path, {})
    const seen: number[] = []
    store.subscribe((c) => seen.push(c.server.port))
    await writeFile(path, 'server:\n  port: 2\n')
    await store.reload()
    await writeFile(path, 'server:\n  port: nope\n')
    await expect(store.reload()).rejects.toBeInstanceOf(ConfigError)
    expect(store.current().server.port).toBe(2)
    expect(seen).toEqual([2])
  })
})

describe('rateSpec', () => {
  it('converts rps and rpm with the default burst of one second', () => {
    expect(rateSpec({ rps: 5 })).toEqual({ limit: 5, periodMs: 1000, burst: 5 })
    expect(rateSpec({ rpm: 60 })).toEqual({ limit: 60, periodMs: 60_000, burst: 1 })
    expect(rateSpec({ rpm: 600, burst: 20 })).toEqual({ limit: 600, periodMs: 60_000, burst: 20 })
    expect(rateSpec({ rps: 0.5 })).toEqual({ limit: 0.5, periodMs: 1000, burst: 1 })
  })
})
