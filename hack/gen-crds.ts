// Writes crds/ from sim-runtime/api/schema.ts. test/unit/crds.test.ts fails when crds/ is stale.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderChartCrdTemplates, renderCrdFiles } from '../sim-runtime/api/crds.ts'

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'crds')
mkdirSync(dir, { recursive: true })
for (const [name, text] of Object.entries(renderCrdFiles())) {
  writeFileSync(path.join(dir, name), text)
  console.log(`wrote crds/${name}`)
}

const chartDir = path.join(dir, '..', 'charts', 'livesim', 'templates')
mkdirSync(chartDir, { recursive: true })
for (const [name, text] of Object.entries(renderChartCrdTemplates())) {
  writeFileSync(path.join(chartDir, name), text)
  console.log(`wrote charts/livesim/templates/${name}`)
}
