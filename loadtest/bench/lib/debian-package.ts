import { execFile } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

/** Where a binary is, or why it cannot be had. */
export type Binary =
  | { readonly ok: true; readonly path: string; readonly installed: boolean }
  | { readonly ok: false; readonly reason: string }

// Daemons live in sbin, which a non-root PATH often leaves out.
const SEARCH = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin']

/** The first executable of that name on PATH or in the sbin directories; undefined when none. */
export async function findBinary(name: string): Promise<string | undefined> {
  for (const dir of SEARCH) {
    if (!dir) continue
    const path = join(dir, name)
    try {
      await access(path, constants.X_OK)
      return path
    } catch {
      // Not here.
    }
  }
  return undefined
}

interface Run {
  readonly code: number
  readonly output: string
}

function run(command: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, output: `${stdout}${stderr}` })
      },
    )
  })
}

const lastLines = (text: string, n = 5): string => text.trim().split('\n').slice(-n).join(' | ')

const installing = new Map<string, Promise<Binary>>()

/**
 * The binary, installed with `apt-get install -y <package>` first when it is missing, and
 * with `apt-get update` before a second try when the package lists do not know the package.
 * Only as root and only where apt-get exists; otherwise the reason says what to run. Debian's
 * packages may start their own service on install (nginx on port 80) unless policy-rc.d says
 * no; the bench never uses that one, it starts its own process on a free port.
 */
export function ensureBinary(name: string, debianPackage: string): Promise<Binary> {
  const known = installing.get(name)
  if (known) return known
  const result = (async (): Promise<Binary> => {
    const found = await findBinary(name)
    if (found) return { ok: true, path: found, installed: false }
    const apt = await findBinary('apt-get')
    const how = `install it with: sudo apt-get install -y ${debianPackage}`
    if (!apt)
      return { ok: false, reason: `${name} is not installed and there is no apt-get; ${how}` }
    if (process.getuid?.() !== 0)
      return { ok: false, reason: `${name} is not installed and the bench is not root; ${how}` }
    process.stdout.write(`${name} is missing: apt-get install -y ${debianPackage}\n`)
    let install = await run(apt, ['install', '-y', debianPackage])
    if (install.code !== 0) {
      process.stdout.write(`apt-get install failed; apt-get update, then once more\n`)
      await run(apt, ['update'])
      install = await run(apt, ['install', '-y', debianPackage])
    }
    const path = await findBinary(name)
    if (install.code !== 0 || !path)
      return {
        ok: false,
        reason: `apt-get install -y ${debianPackage} failed (exit ${install.code}): ${lastLines(install.output)}`,
      }
    return { ok: true, path, installed: true }
  })()
  installing.set(name, result)
  return result
}

/** The first line a binary prints for its version flag (nginx and redis print on different streams). */
export async function versionOf(path: string, flag: string): Promise<string> {
  const { output } = await run(path, [flag])
  return output.trim().split('\n')[0] ?? 'unknown'
}
