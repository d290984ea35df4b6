// Writes crds/ from sim-runtime/api/schema.ts. test/unit/crds.test.ts fails when crds/ is stale.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderCrdFiles } from '../sim-runtime/api/crds.ts'

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'crds')
mkdirSync(dir, { recursive: true })
for (const [name, text] of Object.entries(renderCrdFiles())) {
  writeFileSync(path.join(dir, name), text)
  console.log(`wrote crds/${name}`)
}
