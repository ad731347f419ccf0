import { describe, expect, it } from 'vitest'
import { parseCommandLine, UsageError, type Command } from './command-line.ts'

function refusal(args: string[]): UsageError {
  try {
    parseCommandLine(args)
  } catch (err) {
    if (err instanceof UsageError) return err
    throw err
  }
  throw new Error(`${args.join(' ')} was accepted`)
}

describe('parseCommandLine', () => {
  it.each<[string[], Command]>([
    [[], { name: 'start' }],
    [['start'], { name: 'start' }],
    [['start', '--config', 'a.yaml'], { name: 'start', config: 'a.yaml' }],
    [['start', '--config=a.yaml'], { name: 'start', config: 'a.yaml' }],
    [['--config', 'a.yaml'], { name: 'start', config: 'a.yaml' }],
    [['--config=a.yaml'], { name: 'start', config: 'a.yaml' }],
    [['config', 'check', 'a.yaml'], { name: 'config check', file: 'a.yaml' }],
    [['config', 'schema'], { name: 'config schema' }],
    [['keys', 'hash'], { name: 'keys hash' }],
    [['keys', 'hash', 'fl_x'], { name: 'keys hash', key: 'fl_x' }],
    [
      ['keys', 'hash', '--', '-starts-with-a-dash'],
      { name: 'keys hash', key: '-starts-with-a-dash' },
    ],
    [['help'], { name: 'help' }],
    [['--help'], { name: 'help' }],
    [['-h'], { name: 'help' }],
    [['start', '--help'], { name: 'help' }],
    [['config', 'check', '-h'], { name: 'help' }],
    [['top'], { name: 'top', admin: [], by: 'lane', limit: 20, intervalMs: 2_000, once: false }],
    [
      ['top', '--admin', 'http://a:9090,http://b:9090', '--admin=c:9090', '--by', 'workspace'],
      {
        name: 'top',
        admin: ['http://a:9090,http://b:9090', 'c:9090'],
        by: 'workspace',
        limit: 20,
        intervalMs: 2_000,
        once: false,
      },
    ],
    [
      ['top', '--once', '--limit', '5', '--interval', '0.5'],
      { name: 'top', admin: [], by: 'lane', limit: 5, intervalMs: 500, once: true },
    ],
  ])('%j', (args, command) => {
    expect(parseCommandLine(args)).toEqual(command)
  })

  it.each<[string[], string, string]>([
    [['start', '--confg', 'my.yaml'], 'start: unknown option --confg', 'fairlane start'],
    [['--configg=my.yaml'], 'start: unknown option --configg', 'fairlane start'],
    [['start', 'my.yaml'], 'start: unexpected argument "my.yaml"', 'fairlane start'],
    [['--config', 'a.yaml', 'b.yaml'], 'start: unexpected argument "b.yaml"', 'fairlane start'],
    [['start', '--config'], "Option '--config <value>' argument missing", 'fairlane start'],
    [['start', '--config='], '--config needs a file path', 'fairlane start'],
    [['--port', '80'], 'start: unknown option --port', 'fairlane start'],
    [['config', 'check'], 'config check: needs a FILE', 'fairlane config check FILE'],
    [['config', 'check', 'a', 'b'], 'unexpected argument "b"', 'fairlane config check FILE'],
    [['config', 'check', '--strict', 'a'], 'unknown option --strict', 'fairlane config check'],
    [['config', 'schema', 'x'], 'unexpected argument "x"', 'fairlane config schema'],
    [['keys', 'hash', 'a', 'b'], 'unexpected argument "b"', 'fairlane keys hash [KEY]'],
    [['keys', 'hash', '--new'], 'unknown option --new', 'fairlane keys hash'],
    [['help', 'start'], 'help: unexpected argument "start"', 'fairlane <command>'],
    [['frobnicate'], 'unknown command "frobnicate"', 'fairlane <command>'],
    [['config'], 'unknown command "config"', 'fairlane <command>'],
    [['top', '--by', 'key'], '--by is lane or workspace', 'fairlane top'],
    [['top', '--limit', '2.5'], '--limit must be a whole number', 'fairlane top'],
    [['top', '--interval', '0'], '--interval must be a positive number', 'fairlane top'],
    [['top', 'node-1'], 'unexpected argument "node-1"', 'fairlane top'],
  ])('refuses %j', (args, message, usage) => {
    const error = refusal(args)
    expect(error.message).toContain(message)
    expect(error.usage).toContain(`Usage: ${usage}`)
  })
})
