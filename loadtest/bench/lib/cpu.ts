import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
let ticksPerSecond: number | undefined

function ticks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond =
        Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** User + system CPU time of a process in ms, or undefined where /proc is not there (not Linux) or the process is gone. */
function cpuTimeMs(pid: number): number | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name is in parentheses and may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1000) / ticks()
}

/**
 * Watches the CPU time of named processes; the returned function gives each one's CPU time
 * since the watch began, ms (user + system), or null when it cannot be read. Unrounded: CPU
 * per request at a modest fixed rate is a few percent of a core per process.
 */
export function watchCpuTime(
  pids: Readonly<Record<string, number>>,
): () => Record<string, number | null> {
  const before = Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, cpuTimeMs(pid)]),
  )
  return () => {
    const used: Record<string, number | null> = {}
    for (const [name, pid] of Object.entries(pids)) {
      const start = before[name]
      const end = cpuTimeMs(pid)
      used[name] = start === undefined || end === undefined ? null : end - start
    }
    return used
  }
}

/**
 * Watches the CPU time of named processes; the returned function gives each one's use since
 * the watch began as a percentage of one core (200 = both cores of a 2-core machine), or null
 * when it cannot be read. On a machine with fewer cores than busy processes this is what tells
 * a slow system from a starved one.
 */
export function watchCpu(
  pids: Readonly<Record<string, number>>,
): () => Record<string, number | null> {
  const started = performance.now()
  const time = watchCpuTime(pids)
  return () => {
    const elapsedMs = performance.now() - started
    return Object.fromEntries(
      Object.entries(time()).map(([name, ms]) => [
        name,
        ms === null ? null : Math.round((ms / elapsedMs) * 100),
      ]),
    )
  }
}

/**
 * The processes whose parent is `pid` (Linux /proc; empty elsewhere): the workers a server
 * forks, which do its work while the master, the process the bench started, sits idle.
 */
export function childPids(pid: number): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  const found: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue
    }
    // Fields after the command name: state, then ppid.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    if (ppid === pid) found.push(Number(entry))
  }
  return found
}

/** Busy CPU time of the whole machine in ms (every core, interrupts included), from /proc/stat. */
function machineBusyMs(): number | undefined {
  let stat: string
  try {
    stat = readFileSync('/proc/stat', 'utf8')
  } catch {
    return undefined
  }
  // cpu  user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
  const fields = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number)
  if (fields.length < 8 || fields.some((n) => !Number.isFinite(n))) return undefined
  const [user, nice, system, , , irq, softirq, steal] = fields as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  return ((user + nice + system + irq + softirq + steal) * 1000) / ticks()
}

/**
 * Watches the whole machine's busy CPU, % of one core (200 = both cores of a 2-core machine
 * busy), or null where /proc/stat is not there. Minus the watched processes it is what the
 * rest of the machine did meanwhile: other people's work, and the kernel's (loopback
 * networking is partly booked as interrupt time, to no process).
 */
export function watchMachineCpu(): () => number | null {
  const started = performance.now()
  const before = machineBusyMs()
  return () => {
    const end = machineBusyMs()
    if (before === undefined || end === undefined) return null
    return Math.round(((end - before) / (performance.now() - started)) * 100)
  }
}
