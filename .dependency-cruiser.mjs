// The layers of README's Development section, checked on every import (`npm run deps`, part
// of `npm test`). A lib's own code (src, tests excluded) may import only the libs listed for it:
//   protocol                       nothing
//   config, telemetry              protocol
//   limits, scheduler              protocol, config
//   actor, cluster, forward        protocol, config, limits, scheduler
//   services/fairlane              every lib but testing
//   client                         nothing (published alone; it speaks only the HTTP contract)
// Tests may import any lib their package declares (a transport is tested against the actor it
// carries tickets to), libs/testing included; nothing imports a service or the benchmarks.

import { readdirSync, readFileSync } from 'node:fs'

const TEST = '(^|/)test/|\\.test\\.ts$'

/** A rule that the src of `lib` imports no @fairlane lib outside `allowed` (and itself). */
function layer(lib, allowed, why) {
  const others = [lib, ...allowed].join('|')
  return {
    name: `layer-${lib}`,
    comment: why,
    severity: 'error',
    from: { path: `^libs/${lib}/src/`, pathNot: TEST },
    to: { path: '^libs/', pathNot: `^libs/(${others})/` },
  }
}

/** The workspaces (dir → package.json) and the root, whose examples are its code. */
function workspaces() {
  const dirs = ['loadtest']
  for (const parent of ['libs', 'services']) {
    for (const name of readdirSync(parent)) dirs.push(`${parent}/${name}`)
  }
  const manifest = (dir) => JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'))
  return [...dirs.map((dir) => [dir, manifest(dir)]), ['examples', manifest('.')]]
}

/**
 * One rule per package: its files (tests too) import only the libs its package.json lists.
 * knip finds other undeclared imports, but lets private workspaces import each other unlisted.
 */
function declaredLibs() {
  const packages = workspaces()
  const dirOf = new Map(packages.map(([dir, manifest]) => [manifest.name, dir]))
  return packages.map(([dir, manifest]) => {
    const listed = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })
    const reachable = [dir, ...listed.map((name) => dirOf.get(name)).filter(Boolean)]
    return {
      name: `declared-libs-${dir.replace('/', '-')}`,
      comment: `${dir} imports a lib its package.json does not list: add it, or drop the import.`,
      severity: 'error',
      from: { path: `^${dir}/` },
      to: { path: '^libs/', pathNot: `^(${reachable.join('|')})/` },
    }
  })
}

export default {
  forbidden: [
    ...declaredLibs(),
    layer('protocol', [], 'protocol is the bottom layer: the types and codes every lib shares.'),
    layer('config', ['protocol'], 'config knows the schema of settings, none of the engines.'),
    layer(
      'telemetry',
      ['protocol'],
      'telemetry is a leaf adapter (logs, metrics) the service wires in.',
    ),
    layer(
      'limits',
      ['protocol', 'config'],
      'limits is a pure engine beside the scheduler, below the actor.',
    ),
    layer(
      'scheduler',
      ['protocol', 'config'],
      'scheduler is a pure engine beside limits, below the actor.',
    ),
    layer(
      'actor',
      ['protocol', 'config', 'limits', 'scheduler'],
      'the actor composes the engines; transports carry tickets to it, it knows no transport.',
    ),
    layer(
      'cluster',
      ['protocol', 'config', 'limits', 'scheduler'],
      'transports speak the protocol contract; the service plugs the actor in behind them.',
    ),
    layer(
      'forward',
      ['protocol', 'config', 'limits', 'scheduler'],
      'forwarding is an adapter beside the actor and the transports, never reaching into them.',
    ),
    layer(
      'client',
      [],
      '@fairlane/client is published alone: it knows Fairlane only through its HTTP contract.',
    ),
    layer(
      'testing',
      [],
      'the real loopback servers of the tests stand for the world, not for Fairlane code.',
    ),
    {
      name: 'testing-only-from-tests',
      comment: 'libs/testing starts servers and relays: production code must never load it.',
      severity: 'error',
      from: { path: '^(libs|services)/[^/]+/src/', pathNot: [TEST, '^libs/testing/'] },
      to: { path: '^libs/testing/' },
    },
    {
      name: 'nothing-imports-a-service',
      comment:
        'services compose libs; a lib, a benchmark or an example that imports one inverts that.',
      severity: 'error',
      from: { pathNot: '^services/' },
      to: { path: '^services/' },
    },
    {
      name: 'nothing-imports-the-benchmarks',
      comment:
        'loadtest drives Fairlane from outside; code that imports it would ship the harness.',
      severity: 'error',
      from: { pathNot: '^loadtest/' },
      to: { path: '^loadtest/' },
    },
    {
      name: 'one-door-per-lib',
      comment:
        'a lib is reached only through its src/index.ts (its package.json exports), never its files.',
      severity: 'error',
      from: { path: '^(libs|services)/([^/]+)/' },
      to: { path: '^libs/[^/]+/', pathNot: ['^$1/$2/', '^libs/[^/]+/src/index\\.ts$'] },
    },
    {
      name: 'no-circular',
      comment: 'a cycle makes two modules one: neither can be read, tested or moved alone.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing fails at run time.',
      severity: 'error',
      // k6 scripts import modules built into the k6 binary and jslib URLs, which k6 resolves.
      from: { pathNot: '^loadtest/k6/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|\\.nx|results)/' },
    // `import type` counts: a type from a higher layer is as much a dependency on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      // Resolve @fairlane/* as the repo runs them: the `development` condition points at src.
      conditionNames: ['development', 'import', 'types', 'default'],
      exportsFields: ['exports'],
      extensions: ['.ts', '.js'],
      mainFields: ['module', 'main', 'types'],
    },
  },
}
