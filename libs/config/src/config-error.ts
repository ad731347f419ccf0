/** One problem in a config file, located by its path (`targets.echo.endpoints[0].url`). */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
}

/** Every problem found in a config file at once, so an operator fixes them in one pass. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]
  readonly source: string

  constructor(source: string, issues: readonly ConfigIssue[]) {
    super(
      `${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n` +
        issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n'),
    )
    this.name = 'ConfigError'
    this.source = source
    this.issues = issues
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `['targets', 'echo', 'endpoints', 0, 'url']` → `targets.echo.endpoints[0].url` */
export function formatPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else if (IDENTIFIER.test(part)) out += out ? `.${part}` : part
    else out += `[${JSON.stringify(part)}]`
  }
  return out
}
