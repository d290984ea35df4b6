// Writes sim-runtime/live/shim/layout.h from sim-runtime/live/shim/layout.ts. test/live/shim-layout.test.ts
// fails when the header is stale or when the C compiler lays the stamp record out differently.
import { writeFileSync } from 'node:fs'
import { LAYOUT_HEADER_PATH, layoutHeader } from '../sim-runtime/live/shim/layout.ts'

writeFileSync(LAYOUT_HEADER_PATH, layoutHeader())
console.log(`wrote ${LAYOUT_HEADER_PATH}`)
