#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm run build), or the TypeScript source on a Node
// that strips types (≥ 22.18), as in a checkout.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
const dist = fileURLToPath(new URL('../dist/sim-runtime/cli/main.js', import.meta.url))
await import(existsSync(dist) ? dist : new URL('../sim-runtime/cli/main.ts', import.meta.url).href)
