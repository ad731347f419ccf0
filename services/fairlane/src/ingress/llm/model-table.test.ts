import { describe, expect, it } from 'vitest'
import { ModelTable } from './model-table.ts'

describe('ModelTable', () => {
  const table = new ModelTable({
    'gpt-*': 'openai',
    'gpt-4o-mini*': 'cheap',
    'claude-*': 'anthropic',
    'llama3.1:8b': 'local',
  })

  it('routes an exact name, and a pattern by its longest match', () => {
    expect(table.targetOf('llama3.1:8b')).toBe('local')
    expect(table.targetOf('gpt-4o')).toBe('openai')
    expect(table.targetOf('gpt-4o-mini-2024-07-18')).toBe('cheap')
    expect(table.targetOf('claude-3-5-sonnet')).toBe('anthropic')
  })

  it('matches whole names only, with the dots of a name taken literally', () => {
    expect(table.targetOf('my-gpt-4o')).toBeUndefined()
    expect(table.targetOf('llama3x1:8b')).toBeUndefined()
    expect(table.targetOf('llama3.1:8b-instruct')).toBeUndefined()
    expect(table.targetOf('')).toBeUndefined()
  })

  it('lists its entries as written', () => {
    expect(table.entries.map((e) => e.model)).toEqual([
      'gpt-*',
      'gpt-4o-mini*',
      'claude-*',
      'llama3.1:8b',
    ])
  })
})
