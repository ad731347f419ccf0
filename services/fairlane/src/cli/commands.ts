import {
  ConfigError,
  FileConfigStore,
  configJsonSchemaText,
  loadConfigFile,
} from '@fairlane/config'
import { settleWithin } from '@fairlane/cluster'
import { startTracing } from '@fairlane/telemetry'
import { hashKeySecret, newKeySecret } from '../keys/key-secret.ts'
import { STOP_AFTER_GRACE_MS, startNode } from '../node/node.ts'
import { nodeSettingsFrom, type NodeSettings } from '../node/node-settings.ts'
import { DEFAULT_CONFIG_PATH } from './default-config.ts'

/** Exit codes: 2 means the configuration (or the command line) is wrong, 1 anything else. */
const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export interface Io {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
}

function portFrom(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(name, [
      { path: '', message: `must be a port number (got ${JSON.stringify(value)})` },
    ])
  }
  return port
}

function configPathFrom(config: string | undefined, env: Io['env']): string {
  return config ?? (env['FAIRLANE_CONFIG'] || DEFAULT_CONFIG_PATH)
}

export async function configCheck(path: string, io: Io): Promise<number> {
  try {
    const config = await loadConfigFile(path, io.env)
    const keys = Object.values(config.workspaces).reduce((n, w) => n + w.keys.length, 0)
    io.out(
      `${path}: valid (${Object.keys(config.targets).length} targets, ${Object.keys(config.workspaces).length} workspaces, ${keys} keys)`,
    )
    return EXIT_OK
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message)
      return EXIT_USAGE
    }
    throw err
  }
}

export function configSchema(io: Io): number {
  io.out(configJsonSchemaText().trimEnd())
  return EXIT_OK
}

export function keysHash(secret: string | undefined, io: Io): number {
  if (secret !== undefined) {
    io.out(hashKeySecret(secret))
    return EXIT_OK
  }
  const key = newKeySecret()
  io.out(`key:  ${key}`)
  io.out(`hash: ${hashKeySecret(key)}`)
  io.err('Give the key to its caller; it is not stored anywhere. Put the hash in the config:')
  io.err('  workspaces.<name>.keys: [{ id: <key id>, hash: <hash> }]')
  return EXIT_OK
}

/**
 * Runs until SIGTERM or SIGINT; SIGHUP re-reads the config file. `config` is the --config
 * value, if given.
 */
export async function start(config: string | undefined, io: Io): Promise<number> {
  let store: FileConfigStore
  let port: number | undefined
  let adminPort: number | undefined
  let settings: NodeSettings
  try {
    settings = nodeSettingsFrom(io.env)
    const path = configPathFrom(config, io.env)
    port = portFrom(io.env['FAIRLANE_PORT'], 'FAIRLANE_PORT')
    adminPort = portFrom(io.env['FAIRLANE_ADMIN_PORT'], 'FAIRLANE_ADMIN_PORT')
    store = await FileConfigStore.open(path, io.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(err.message)
      return EXIT_USAGE
    }
    throw err
  }
  // Before the node: its spans need the tracer from the start. OTEL_* variables only.
  const tracing = await startTracing(io.env, { node: settings.nodeId, region: settings.region })
  const node = await startNode({
    store,
    settings,
    ...(port !== undefined ? { port } : {}),
    ...(adminPort !== undefined ? { adminPort } : {}),
    ...(tracing ? { tracer: tracing.tracer } : {}),
  })
  node.logger.info(
    {
      proxy: node.proxyUrl,
      admin: node.adminUrl,
      config: store.path,
      traces: tracing ? 'on' : 'off',
      ...node.describe,
    },
    'fairlane started',
  )
  process.on('SIGHUP', () => {
    store.reload().then(
      () => node.logger.info({ config: store.path }, 'config reloaded'),
      (err: unknown) =>
        node.logger.error(
          { config: store.path, problems: err instanceof ConfigError ? err.issues : String(err) },
          'config reload refused; the previous config stays in force',
        ),
    )
  })
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      node.logger.info({ signal }, 'shutting down')
      resolve()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  await node.close()
  // The last spans (the drain's requests among them) are exported before the process exits,
  // as long as a collector that does not answer is not waited for longer than the stop.
  if (tracing) await settleWithin(tracing.shutdown(), STOP_AFTER_GRACE_MS)
  return EXIT_OK
}
