import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CHART, REPO } from './chart.ts'

/**
 * Helm reads only files inside the chart, so the chart holds copies of the dashboards and
 * rule files whose sources live in deploy/grafana and deploy/prometheus; `npm run chart:sync`
 * refreshes them.
 */
const COPIES = [
  { source: 'deploy/grafana', copy: 'dashboards', files: /\.json$/, content: /^/ },
  // Rule files only: promtool test files and a Prometheus config may sit beside them.
  { source: 'deploy/prometheus', copy: 'rules', files: /\.ya?ml$/, content: /^groups:/m },
]

async function filesIn(dir: string, name: RegExp, content: RegExp): Promise<string[]> {
  if (!existsSync(dir)) return []
  const names = (await readdir(dir)).filter((file) => name.test(file)).sort()
  const texts = await Promise.all(names.map((file) => readFile(join(dir, file), 'utf8')))
  return names.filter((_, n) => content.test(texts[n] ?? ''))
}

describe.each(COPIES)('the chart’s $copy/', ({ source, copy, files, content }) => {
  it(`holds exactly the files of ${source}/ (npm run chart:sync)`, async () => {
    const sources = await filesIn(join(REPO, source), files, content)
    const copies = await filesIn(join(CHART, copy), files, content)
    expect(copies).toEqual(sources)
    for (const name of sources) {
      const [original, copied] = await Promise.all([
        readFile(join(REPO, source, name), 'utf8'),
        readFile(join(CHART, copy, name), 'utf8'),
      ])
      expect(copied, `${copy}/${name} differs from ${source}/${name}: npm run chart:sync`).toBe(
        original,
      )
    }
  })
})
