#!/usr/bin/env node
import {
  EXIT_FAILURE,
  EXIT_USAGE,
  configCheck,
  configSchema,
  keysHash,
  start,
  type Io,
} from './cli/commands.ts'
import { USAGE, UsageError, parseCommandLine, type Command } from './cli/command-line.ts'
import { adminUrlsFrom } from './cli/admin-urls.ts'
import { top } from './cli/top.ts'

const io: Io = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  env: process.env,
}

async function run(args: readonly string[]): Promise<number> {
  let command: Command
  try {
    command = parseCommandLine(args)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    const more = err.usage === USAGE ? '' : '\nRun "fairlane help" for every command.'
    io.err(`fairlane: ${err.message}\n${err.usage}${more}`)
    return EXIT_USAGE
  }
  switch (command.name) {
    case 'help':
      io.out(USAGE)
      return 0
    case 'start':
      return start(command.config, io)
    case 'config check':
      return configCheck(command.file, io)
    case 'config schema':
      return configSchema(io)
    case 'keys hash':
      return keysHash(command.key, io)
    case 'top': {
      const stopped = new AbortController()
      process.once('SIGINT', () => stopped.abort())
      process.once('SIGTERM', () => stopped.abort())
      // A closed pipe (`fairlane top | head`) ends the view instead of crashing it.
      process.stdout.on('error', () => stopped.abort())
      const admin = adminUrlsFrom(command.admin, io.env)
      return top({ ...command, admin }, (text) => process.stdout.write(text), stopped.signal)
    }
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    io.err(`fairlane: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exit(EXIT_FAILURE)
  },
)
