import { describe, expect, it } from 'vitest'
import { configFromValue } from '@fairlane/config'
import { hostName, matchRoute, routeTableOf } from './route-table.ts'

const config = configFromValue(
  {
    targets: { api: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
    routes: {
      all: { target: 'api' },
      v1: { target: 'api', pathPrefix: '/v1/' },
      orders: { target: 'api', pathPrefix: '/v1/orders' },
      partner: { target: 'api', host: 'partner.example.com', pathPrefix: '/v1' },
      'partner-only': { target: 'api', host: 'only.example.com', pathPrefix: '/only' },
    },
  },
  {},
  'route table test',
)
const table = routeTableOf(config)
const nameOf = (host: string | undefined, path: string) => matchRoute(table, host, path)?.name

describe('route table', () => {
  it('takes the longest prefix, on whole segments', () => {
    expect(nameOf('x', '/v1/orders/7')).toBe('orders')
    expect(nameOf('x', '/v1/orders')).toBe('orders')
    expect(nameOf('x', '/v1/ordersx')).toBe('v1')
    expect(nameOf('x', '/v1')).toBe('v1')
    expect(nameOf('x', '/v10')).toBe('all')
    expect(nameOf('x', '/')).toBe('all')
  })

  it('prefers a route naming the host at equal length, and a host route answers only its host', () => {
    expect(nameOf('partner.example.com', '/v1/x')).toBe('partner')
    expect(nameOf('partner.example.com', '/v1/orders/1')).toBe('orders')
    expect(nameOf('only.example.com', '/only/a')).toBe('partner-only')
    expect(nameOf('other.example.com', '/only/a')).toBe('all')
  })

  it('matches nothing without a catch-all', () => {
    const narrow = configFromValue(
      {
        targets: { api: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
        routes: { v1: { target: 'api', pathPrefix: '/v1' } },
      },
      {},
      'narrow',
    )
    expect(matchRoute(routeTableOf(narrow), 'x', '/v2')).toBeUndefined()
  })

  it('is built once per config snapshot', () => {
    expect(routeTableOf(config)).toBe(table)
  })

  it('reads the host without its port, in lower case', () => {
    expect(hostName('API.Example.com:8080')).toBe('api.example.com')
    expect(hostName('[::1]:8080')).toBe('[::1]')
    expect(hostName('example.com')).toBe('example.com')
    expect(hostName(undefined)).toBeUndefined()
  })
})
