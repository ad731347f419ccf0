import { describe, expect, it } from 'vitest'
import { fillTemplates, fillText } from './chain-template.ts'

const previous = {
  id: 'job_1',
  state: 'succeeded',
  response: { status: 201, body: { order: { id: 'o-7', total: 12.5 }, items: [{ sku: 'A' }] } },
}

describe('follow-up templates', () => {
  it('a whole-string template keeps the value’s type; inside text it is written as text', () => {
    expect(
      fillTemplates(
        {
          order: '{{previous.response.body.order.id}}',
          total: '{{ previous.response.body.order.total }}',
          whole: '{{previous.response.body.order}}',
          note: 'order {{previous.response.body.order.id}} of {{previous.id}}: {{previous.response.status}}',
          list: ['{{previous.response.body.items[0].sku}}'],
        },
        previous,
      ),
    ).toEqual({
      order: 'o-7',
      total: 12.5,
      whole: { id: 'o-7', total: 12.5 },
      note: 'order o-7 of job_1: 201',
      list: ['A'],
    })
  })

  it('a path that leads nowhere is null alone and empty in text; nothing is evaluated', () => {
    expect(fillTemplates('{{previous.response.body.missing.deeper}}', previous)).toBeNull()
    expect(fillText('/orders/{{previous.nope}}/x', previous)).toBe('/orders//x')
    expect(fillText('{{previous.constructor}}', previous)).toBe('')
    expect(fillText('{{ process.exit(1) }}', previous)).toBe('{{ process.exit(1) }}')
  })
})
