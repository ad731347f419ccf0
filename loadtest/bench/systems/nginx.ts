import { chmodSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '@fairlane/testing'
import { launch, type Child } from '../lib/child.ts'
import { childPids } from '../lib/cpu.ts'
import { ensureBinary, versionOf } from '../lib/debian-package.ts'
import {
  FAR_ABOVE_LOAD,
  waitForHttp,
  type Contender,
  type DeployOptions,
  type Deployment,
  type TenantLimit,
} from './contender.ts'

const dirs = new Set<string>()
let hooked = false

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  dirs.delete(dir)
}

async function benchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fairlane-bench-nginx-'))
  dirs.add(dir)
  if (!hooked) {
    hooked = true
    process.once('exit', () => {
      for (const left of dirs) removeDir(left)
    })
  }
  // A root master runs its worker as nobody, which must reach the temp paths inside.
  chmodSync(dir, 0o755)
  return dir
}

/** nginx takes whole requests per second or per minute: 33.3 r/s is written 2000r/m. */
function nginxRate(rps: number): string {
  return Number.isInteger(rps) ? `${rps}r/s` : `${Math.round(rps * 60)}r/m`
}

function workerUser(): string {
  if (process.getuid?.() !== 0) return ''
  // Debian's unprivileged group is nogroup; elsewhere it is often nobody.
  let group = 'nobody'
  try {
    if (/^nogroup:/m.test(readFileSync('/etc/group', 'utf8'))) group = 'nogroup'
  } catch {
    // No /etc/group: keep nobody.
  }
  return `user nobody ${group};\n`
}

/**
 * nginx as users run it in front of an API: one worker process (this machine has two cores and
 * the load generator and the upstream need the other), keep-alive to the upstream, no access
 * log (Fairlane runs with request logs off too). With a limit: `limit_req` keyed by the
 * Authorization header, `nodelay` (over the limit is 429 at once, not a delay), the burst of
 * the limit. Everything, pid file and error log included, is in a temp dir of its own.
 */
function nginxConfig(
  dir: string,
  port: number,
  upstreamPorts: readonly number[],
  limit?: TenantLimit,
): string {
  const limitZone = limit
    ? `  limit_req_zone $http_authorization zone=tenant:16m rate=${nginxRate(limit.rps)};\n` +
      '  limit_req_status 429;\n'
    : ''
  const limitReq = limit ? `      limit_req zone=tenant burst=${limit.burst} nodelay;\n` : ''
  return (
    workerUser() +
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend {
${upstreamPorts.map((p) => `    server 127.0.0.1:${p};\n`).join('')}    keepalive 64;
  }
${limitZone}  server {
    listen 127.0.0.1:${port};
    location / {
${limitReq}      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`
  )
}

async function startInstance(
  binary: string,
  index: number,
  upstreamPorts: readonly number[],
  limit?: TenantLimit,
): Promise<{ child: Child; base: string; worker: number | undefined; dir: string }> {
  const dir = await benchDir()
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, nginxConfig(dir, port, upstreamPorts, limit))
  // -e: the start-up error log, before the config is read, also stays out of /var/log.
  const child = launch(
    `nginx-${index}`,
    binary,
    ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'],
    { group: true },
  )
  const base = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(`${base}/`, [child])
  } catch (err) {
    await child.stop()
    const log = (() => {
      try {
        return readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000)
      } catch {
        return ''
      }
    })()
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${log}`, { cause: err })
  }
  return { child, base, worker: childPids(child.pid)[0], dir }
}

function nginxContender(withLimit: boolean): Contender {
  const binary = (): Promise<string> =>
    ensureBinary('nginx', 'nginx').then((b) => {
      if (!b.ok) throw new Error(b.reason)
      return b.path
    })
  return {
    name: withLimit ? 'nginx-limit-req' : 'nginx',
    description: withLimit
      ? 'nginx (Debian) reverse proxy with limit_req per tenant, each instance counting alone'
      : 'nginx (Debian) reverse proxy, no limit',
    limiter: withLimit ? 'per-instance' : 'none',
    maxInstances: 16,
    failover: true,
    async check() {
      const found = await ensureBinary('nginx', 'nginx')
      return found.ok ? undefined : found.reason
    },
    async facts() {
      const found = await ensureBinary('nginx', 'nginx')
      return found.ok
        ? {
            version: await versionOf(found.path, '-v'),
            ...(found.installed ? { installedBy: 'apt-get install -y nginx (this run)' } : {}),
          }
        : {}
    },
    async start(options: DeployOptions): Promise<Deployment> {
      const path = await binary()
      const limit = withLimit ? (options.limit ?? FAR_ABOVE_LOAD) : undefined
      // Several regions: one upstream block listing them all, balanced at nginx's defaults.
      const upstreamPorts = options.regions
        ? options.regions.regions.map((r) => r.upstream.port)
        : [options.upstream.port]
      const started: Awaited<ReturnType<typeof startInstance>>[] = []
      try {
        for (let i = 0; i < options.instances; i++)
          started.push(await startInstance(path, i, upstreamPorts, limit))
      } catch (err) {
        for (const s of started) await s.child.stop()
        throw err
      }
      const pids: Record<string, number> = {}
      for (const [i, s] of started.entries())
        pids[options.instances > 1 ? `nginx-${i}` : 'nginx'] = s.worker ?? s.child.pid
      return {
        bases: started.map((s) => s.base),
        pids,
        children: started.map((s) => s.child),
        notes: [
          'worker_processes 1, keepalive 64 to the upstream, access_log off',
          ...(options.regions
            ? [
                `upstream block of ${options.regions.regions.map((r) => r.name).join(' and ')}: ` +
                  'round robin, nginx defaults (max_fails 1, fail_timeout 10s, ' +
                  'proxy_next_upstream error timeout, proxy_connect_timeout 60s)',
              ]
            : []),
          ...(limit
            ? [
                `limit_req_zone $http_authorization rate=${nginxRate(limit.rps)}, ` +
                  `limit_req burst=${limit.burst} nodelay, status 429` +
                  (options.instances > 1 ? `, on each of ${options.instances} instances` : ''),
              ]
            : []),
        ],
        stop: async () => {
          for (const s of started) {
            await s.child.stop()
            removeDir(s.dir)
          }
        },
      }
    },
  }
}

export const nginx = nginxContender(false)
export const nginxLimitReq = nginxContender(true)
