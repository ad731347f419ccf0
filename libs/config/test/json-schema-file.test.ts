import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { configJsonSchemaText } from '@fairlane/config'

describe('docs/config.schema.json', () => {
  it('is the schema the code validates with (regenerate with `npm run schema`)', async () => {
    const file = await readFile(
      new URL('../../../docs/config.schema.json', import.meta.url),
      'utf8',
    )
    expect(file).toBe(configJsonSchemaText())
  })
})
