#!/usr/bin/env node
// Installed entry point: runs the compiled CLI (npm run build), or the TypeScript source on a Node
// that strips types (≥ 22.18), as in a checkout.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = path.join(root, 'dist', 'sim-runtime', 'cli', 'main.js')
await import(pathToFileURL(existsSync(dist) ? dist : path.join(root, 'sim-runtime', 'cli', 'main.ts')).href)
