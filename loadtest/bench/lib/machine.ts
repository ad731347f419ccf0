import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { REPO_ROOT } from './paths.ts'

/** What a figure depends on besides the code: two results are comparable only if these match. */
export interface MachineFacts {
  readonly date: string
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly platform: string
  readonly node: string
  readonly loadAverage1m: number
  /** null outside a git checkout; dirty means the tree had uncommitted changes to tracked files. */
  readonly git: { readonly commit: string; readonly dirty: boolean } | null
}

function git(args: readonly string[]): string {
  // --no-optional-locks: reading the state must not write the index of a tree others are editing.
  return execFileSync('git', ['--no-optional-locks', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim()
}

function gitState(): MachineFacts['git'] {
  try {
    return {
      commit: git(['rev-parse', 'HEAD']),
      dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    }
  } catch {
    return null
  }
}

export function machineFacts(): MachineFacts {
  return {
    date: new Date().toISOString(),
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAverage1m: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    git: gitState(),
  }
}
