#!/usr/bin/env node
import {
  EXIT_FAILURE,
  EXIT_USAGE,
  USAGE,
  configCheck,
  configSchema,
  keysHash,
  start,
  type Io,
} from './cli/commands.ts'

const io: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  env: process.env,
}

async function run(args: readonly string[]): Promise<number> {
  const [command, sub, arg] = args
  if (command === 'help' || command === '-h' || command === '--help') {
    io.out(USAGE)
    return 0
  }
  if (command === undefined || command === 'start' || command.startsWith('--config')) {
    return start(command === 'start' ? args.slice(1) : args, io)
  }
  if (command === 'config' && sub === 'check') return configCheck(arg, io)
  if (command === 'config' && sub === 'schema') return configSchema(io)
  if (command === 'keys' && sub === 'hash') return keysHash(arg, io)
  io.err(`fairlane: unknown command "${args.join(' ')}"\n\n${USAGE}`)
  return EXIT_USAGE
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    io.err(`fairlane: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(EXIT_FAILURE)
  },
)
