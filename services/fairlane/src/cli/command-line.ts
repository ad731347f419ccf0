import { parseArgs } from 'node:util'

/** What the command line asks for, once every argument has been accounted for. */
export type Command =
  | { readonly name: 'help' }
  | { readonly name: 'start'; readonly config?: string }
  | { readonly name: 'config check'; readonly file: string }
  | { readonly name: 'config schema' }
  | { readonly name: 'keys hash'; readonly key?: string }
  | {
      readonly name: 'top'
      /** --admin values as given (comma-separated lists allowed); none: from the environment. */
      readonly admin: readonly string[]
      readonly by: 'lane' | 'workspace'
      readonly limit: number
      readonly intervalMs: number
      readonly once: boolean
    }

/** A command line that names no command, or gives one an argument it does not take. */
export class UsageError extends Error {
  /** The usage line of the command that was meant, or of the whole CLI. */
  readonly usage: string

  constructor(message: string, usage: string) {
    super(message)
    this.name = 'UsageError'
    this.usage = usage
  }
}

const COMMAND_USAGE = {
  start: 'Usage: fairlane start [--config FILE]',
  'config check': 'Usage: fairlane config check FILE',
  'config schema': 'Usage: fairlane config schema',
  'keys hash': 'Usage: fairlane keys hash [KEY]',
  top: 'Usage: fairlane top [--admin URL[,URL…]]… [--by lane|workspace] [--limit N] [--interval SECONDS] [--once]',
} as const

export const USAGE = `Usage: fairlane <command>

Commands:
  start [--config FILE]    run a Fairlane node (the default command): embedded mode,
                           or a cluster node when FAIRLANE_NATS_URL and
                           FAIRLANE_REDIS_URL are set
  config check FILE        validate a config file and exit (0 valid, 2 invalid)
  config schema            print the JSON Schema of the config file
  keys hash [KEY]          make a new random key and print it with its hash for the
                           config; with KEY, print the hash of that key
  top [--admin URL,…]      live view of the busiest lanes (--by workspace: workspaces)
                           of a node, or of a cluster with every node's admin URL;
                           --limit N rows, --interval SECONDS, --once to print once
  help                     show this text

Every command also takes -h/--help. Unknown options and extra arguments are refused
(exit 2), so a mistyped --config never starts the default config.
Config file: --config FILE, else FAIRLANE_CONFIG, else examples/quickstart.yaml.
Environment: FAIRLANE_PORT (proxy port), FAIRLANE_ADMIN_PORT (admin port),
  FAIRLANE_NODE_ID, FAIRLANE_REGION, FAIRLANE_ROLES (ingress,actor,worker; default all),
  FAIRLANE_NATS_URL, FAIRLANE_REDIS_URL (cluster mode), FAIRLANE_ADMIN_TOKEN (admin API);
  top reads FAIRLANE_ADMIN_URL (comma-separated) without --admin, else the admin port.`

const HELP = { help: { type: 'boolean', short: 'h' } } as const

/** parseArgs' own messages advise on `--` quoting; name the offending option instead. */
function parseProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const option = /^Unknown option '([^']+)'/.exec(message)?.[1]
  return option === undefined ? message : `unknown option ${option}`
}

/**
 * Strict parse of one command's arguments: an unknown option, a missing option value or a
 * positional beyond `maxPositionals` is a UsageError carrying that command's usage line.
 */
function argumentsOf<
  const Options extends Record<
    string,
    { type: 'string'; multiple?: boolean } | { type: 'boolean' }
  >,
>(
  command: keyof typeof COMMAND_USAGE,
  args: readonly string[],
  options: Options,
  maxPositionals: number,
) {
  const usage = COMMAND_USAGE[command]
  let parsed
  try {
    parsed = parseArgs({
      args: [...args],
      options: { ...options, ...HELP },
      strict: true,
      allowPositionals: true,
    })
  } catch (err) {
    throw new UsageError(`${command}: ${parseProblem(err)}`, usage)
  }
  const extra = parsed.positionals[maxPositionals]
  if (extra !== undefined) {
    throw new UsageError(`${command}: unexpected argument ${JSON.stringify(extra)}`, usage)
  }
  return parsed
}

function start(args: readonly string[]): Command {
  const { values } = argumentsOf('start', args, { config: { type: 'string' } }, 0)
  if (values.help) return { name: 'help' }
  if (values.config === '') throw new UsageError('--config needs a file path', COMMAND_USAGE.start)
  return values.config === undefined ? { name: 'start' } : { name: 'start', config: values.config }
}

function positiveNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(
      `top: ${name} must be a positive number (got ${JSON.stringify(value)})`,
      COMMAND_USAGE.top,
    )
  }
  return n
}

function topCommand(args: readonly string[]): Command {
  const { values } = argumentsOf(
    'top',
    args,
    {
      admin: { type: 'string', multiple: true },
      by: { type: 'string' },
      limit: { type: 'string' },
      interval: { type: 'string' },
      once: { type: 'boolean' },
    },
    0,
  )
  if (values.help) return { name: 'help' }
  const by = values.by ?? 'lane'
  if (by !== 'lane' && by !== 'workspace') {
    throw new UsageError(
      `top: --by is lane or workspace (got ${JSON.stringify(by)})`,
      COMMAND_USAGE.top,
    )
  }
  const limit = positiveNumber(values.limit, '--limit', 20)
  if (!Number.isInteger(limit)) {
    throw new UsageError(
      `top: --limit must be a whole number (got ${values.limit})`,
      COMMAND_USAGE.top,
    )
  }
  return {
    name: 'top',
    admin: values.admin ?? [],
    by,
    limit,
    intervalMs: positiveNumber(values.interval, '--interval', 2) * 1000,
    once: values.once ?? false,
  }
}

/** `fairlane [command] [arguments]` → the command, or a UsageError. */
export function parseCommandLine(args: readonly string[]): Command {
  const [first, second, ...rest] = args
  if (first === undefined) return { name: 'start' }
  if (first === 'help') {
    if (second !== undefined) {
      throw new UsageError(`help: unexpected argument ${JSON.stringify(second)}`, USAGE)
    }
    return { name: 'help' }
  }
  // `fairlane --config FILE` (what `npm start -- --config FILE` runs) is `start`.
  if (first === 'start' || first.startsWith('-')) {
    return start(first === 'start' ? args.slice(1) : args)
  }
  if (first === 'config' && second === 'check') {
    const { values, positionals } = argumentsOf('config check', rest, {}, 1)
    if (values.help) return { name: 'help' }
    const file = positionals[0]
    if (!file) throw new UsageError('config check: needs a FILE', COMMAND_USAGE['config check'])
    return { name: 'config check', file }
  }
  if (first === 'config' && second === 'schema') {
    const { values } = argumentsOf('config schema', rest, {}, 0)
    return values.help ? { name: 'help' } : { name: 'config schema' }
  }
  if (first === 'keys' && second === 'hash') {
    const { values, positionals } = argumentsOf('keys hash', rest, {}, 1)
    if (values.help) return { name: 'help' }
    const key = positionals[0]
    return key === undefined ? { name: 'keys hash' } : { name: 'keys hash', key }
  }
  if (first === 'top') return topCommand(args.slice(1))
  throw new UsageError(`unknown command ${JSON.stringify(args.join(' '))}`, USAGE)
}
