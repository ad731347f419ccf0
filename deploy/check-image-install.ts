/**
 * What can be checked of deploy/Dockerfile without a Docker engine: its build stage's steps
 * (COPY from a clean build context filtered by .dockerignore, then RUN) are performed in a
 * temporary directory; the production install must hold only what @fairlane/fairlane's
 * dependencies reach in package-lock.json (no dev-only package, no testing lib, no benchmark
 * peer); the final stage must run as a user other than root, with the command `npm start`
 * runs; and that command, started from the result, must answer /readyz 200 and stop on
 * SIGTERM. Run by .ci/run: `node deploy/check-image-install.ts`.
 */
import { execFileSync, spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, matchesGlob, posix } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const SERVICE = '@fairlane/fairlane'
/** Workspaces the image must not hold, whatever links them. */
const DEV_WORKSPACES = ['@fairlane/testing', '@fairlane/loadtest', '@fairlane/deploy']

interface Instruction {
  readonly op: string
  readonly args: string
}

/** The Dockerfile's stages, each a list of instructions (continuation lines joined). */
function stages(text: string): Instruction[][] {
  const joined = text.replace(/\\\n/g, ' ')
  const result: Instruction[][] = []
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(line)
    if (!match || line.trim().startsWith('#')) continue
    const [, op = '', args = ''] = match
    if (op === 'FROM') result.push([])
    result.at(-1)?.push({ op, args: args.trim() })
  }
  return result
}

/** Files of a clean checkout (tracked or new, not ignored) less what .dockerignore keeps out. */
function buildContext(): string[] {
  const patterns = readFileSync(join(REPO, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
  const ignored = (file: string) => {
    const parts = file.split('/')
    // A pattern that matches a folder keeps out everything under it, as Docker's does.
    return parts.some((_, n) => {
      const prefix = parts.slice(0, n + 1).join('/')
      return patterns.some((pattern) => matchesGlob(prefix, pattern))
    })
  }
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    {
      cwd: REPO,
      encoding: 'utf8',
    },
  )
  return listed
    .split('\0')
    .filter((file) => file !== '' && existsSync(join(REPO, file)) && !ignored(file))
}

function copy(
  context: readonly string[],
  sources: readonly string[],
  dest: string,
  app: string,
): void {
  const target = posix.normalize(dest)
  for (const source of sources) {
    const src = posix.normalize(source)
    const files = context.filter((file) => file === src || file.startsWith(src + '/'))
    if (files.length === 0) throw new Error(`COPY ${source}: not in the build context`)
    for (const file of files) {
      const rel = file === src ? posix.basename(file) : file.slice(src.length + 1)
      const to = join(app, target, dest.endsWith('/') || file !== src ? rel : '')
      mkdirSync(dirname(to), { recursive: true })
      cpSync(join(REPO, file), to)
    }
  }
}

interface LockEntry {
  dev?: boolean
  link?: boolean
  resolved?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}

/** Lockfile keys reachable from the service's dependencies, resolved as Node resolves them. */
function productionClosure(packages: Record<string, LockEntry>): Set<string> {
  const reached = new Set<string>()
  const resolve = (from: string, name: string): string | undefined => {
    for (
      let dir = from;
      ;
      dir = dir.includes('/node_modules/') ? dir.slice(0, dir.lastIndexOf('/node_modules/')) : ''
    ) {
      const key = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`
      if (packages[key]) return key
      if (dir === '') return undefined
    }
  }
  const visit = (key: string) => {
    if (reached.has(key)) return
    reached.add(key)
    const entry = packages[key] ?? {}
    // A workspace link's dependencies are listed under the workspace's folder.
    const source = entry.link && entry.resolved ? entry.resolved : key
    const declared = packages[source] ?? {}
    if (source !== key) reached.add(source)
    const names = {
      ...declared.dependencies,
      ...declared.optionalDependencies,
      ...declared.peerDependencies,
    }
    for (const name of Object.keys(names)) {
      const found = resolve(source, name)
      if (found) visit(found)
    }
  }
  visit(`node_modules/${SERVICE}`)
  return reached
}

/** Every package folder under node_modules, as lockfile keys (links are not descended). */
function installed(app: string, dir = 'node_modules'): string[] {
  if (!existsSync(join(app, dir))) return []
  const found: string[] = []
  for (const name of readdirSync(join(app, dir))) {
    if (name.startsWith('.')) continue
    const names = name.startsWith('@')
      ? readdirSync(join(app, dir, name)).map((n) => `${name}/${n}`)
      : [name]
    for (const pkg of names) {
      const key = `${dir}/${pkg}`
      found.push(key)
      if (!lstatSync(join(app, key)).isSymbolicLink())
        found.push(...installed(app, `${key}/node_modules`))
    }
  }
  return found
}

async function startAndAskReady(
  app: string,
  command: readonly string[],
  tmp: string,
): Promise<void> {
  const config = join(tmp, 'fairlane.yaml')
  writeFileSync(
    config,
    'server:\n  host: 127.0.0.1\n  adminHost: 127.0.0.1\ntargets: {}\nworkspaces: {}\n',
  )
  const [program, ...args] = command
  if (program !== 'node') throw new Error(`the image starts ${program}, not node`)
  const child = spawn(process.execPath, args, {
    cwd: app,
    env: {
      PATH: process.env['PATH'] ?? '',
      NODE_ENV: 'production',
      FAIRLANE_CONFIG: config,
      FAIRLANE_PORT: '0',
      FAIRLANE_ADMIN_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  try {
    const deadline = Date.now() + 60_000
    let admin: string | undefined
    while (!admin) {
      if (child.exitCode !== null) throw new Error(`the server exited:\n${output}`)
      if (Date.now() > deadline) throw new Error(`no start line within 60 s:\n${output}`)
      admin = /"admin":"(http:\/\/[^"]+)"/.exec(output)?.[1]
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const response = await fetch(`${admin}/readyz`)
    const body = await response.text()
    if (response.status !== 200) throw new Error(`/readyz answered ${response.status} ${body}`)
    console.log(`started from the install: ${admin}/readyz answered 200 ${body}`)
  } finally {
    child.kill('SIGTERM')
    const code = await exited
    if (code !== 0) console.error(`the server stopped with exit code ${code}:\n${output}`)
  }
}

async function main(): Promise<void> {
  const dockerfile = readFileSync(join(REPO, 'deploy/Dockerfile'), 'utf8')
  const [build, ...rest] = stages(dockerfile)
  const final = rest.at(-1)
  if (!build || !final)
    throw new Error('deploy/Dockerfile: expected a build stage and a final stage')
  const tmp = mkdtempSync(join(tmpdir(), 'fairlane-image-'))
  const app = join(tmp, 'app')
  mkdirSync(app)
  const context = buildContext()

  for (const { op, args } of build) {
    if (op === 'COPY') {
      const words = args.split(/\s+/).filter((w) => !w.startsWith('--'))
      const dest = words.pop() ?? '.'
      copy(context, words, dest, app)
    } else if (op === 'RUN') {
      console.log(`RUN ${args}`)
      // The image's node is this one: first on PATH for npm too.
      const path = `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`
      execFileSync('bash', ['-c', args], {
        cwd: app,
        stdio: 'inherit',
        env: { ...process.env, PATH: path },
      })
    }
  }

  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>
  }
  const allowed = productionClosure(lock.packages)
  const present = installed(app)
  const unwanted = present.filter(
    (key) =>
      !allowed.has(key) ||
      lock.packages[key]?.dev === true ||
      DEV_WORKSPACES.some((name) => key.endsWith(`node_modules/${name}`)),
  )
  for (const dir of ['libs/testing', 'loadtest', 'deploy'])
    if (existsSync(join(app, dir))) unwanted.push(dir)
  if (unwanted.length > 0)
    throw new Error(
      `the production install holds what the service does not need:\n  ${unwanted.join('\n  ')}`,
    )
  console.log(
    `production install: ${present.length} packages, all reached from ${SERVICE}'s dependencies`,
  )

  const user = final.filter((i) => i.op === 'USER').at(-1)?.args
  if (!user || user === 'root' || user === '0') throw new Error('the final stage runs as root')
  const exec = (op: string) =>
    JSON.parse(final.filter((i) => i.op === op).at(-1)?.args ?? '[]') as string[]
  const command = [...exec('ENTRYPOINT'), ...exec('CMD')]
  const npmStart = (
    JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>
    }
  ).scripts['start']
  if (command.join(' ') !== npmStart)
    throw new Error(`the image starts "${command.join(' ')}", npm start runs "${npmStart}"`)
  await startAndAskReady(app, command, tmp)
}

main().then(
  () => console.log('image install check: passed'),
  (err: unknown) => {
    console.error(`image install check: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  },
)
