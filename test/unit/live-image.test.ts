// live.image references: the API server refuses what the CRD's pattern can express (the pattern in
// crds/ as generated), livesim validate refuses that and the rest (repository names over 255
// characters; the rows of validation-table.test.ts), and the two agree.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { load } from 'js-yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { IMAGE_NAME_MAX, IMAGE_REFERENCE_PATTERN, imageReferenceProblem } from '../../sim-runtime/api/image.ts'

const ROOT = path.resolve(import.meta.dirname, '..', '..')
const hex = (n: number) => 'ab'.repeat(n / 2)

const valid = [
  'redis',
  'redis:7.2',
  'docker.io/library/redis:7.2-bookworm',
  'localhost/app',
  'localhost:5000/team/app_v2__x.y-z:v1.0_rc',
  'registry.example:5000/app',
  'Registry.Example/app:1',
  'host:5000/app',
  '[::1]:5000/app:1',
  'a/b/c/d:latest',
  `redis:7@sha256:${hex(64)}`,
  `redis@sha512:${hex(128)}`,
]
/** Refused by the pattern, so by the API server as well as by livesim validate. */
const invalid = [
  '',
  ' redis:7',
  'redis:7 ',
  'Redis:7',
  'MyOrg/redis:7',
  'redis@sha256:abc',
  `redis@sha256:${'AB'.repeat(32)}`,
  `redis@md5:${hex(32)}`,
  `redis@sha256:${hex(64)}:7`,
  `redis@sha256:${hex(64)}@sha256:${hex(64)}`,
  'redis:',
  'redis:-7',
  'redis:.7',
  `redis:${'7'.repeat(129)}`,
  'docker://redis:7',
  'library//redis:7',
  '/redis',
  'redis/',
  'redis--:7',
  '-redis',
  'red is',
  'registry.example/Team/app',
]

describe('image references', () => {
  const crd = load(readFileSync(path.join(ROOT, 'crds', 'livesim.dev_simclusters.yaml'), 'utf8')) as {
    spec: { versions: { schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }[] }
  }
  const live = (crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec as { properties: { hosts: { items: { properties: { components: { items: { properties: { live: { properties: Record<string, { pattern?: string; maxLength?: number }> } } } } } } } } })
    .properties.hosts.items.properties.components.items.properties.live.properties
  const schema = live.image!
  const crdPattern = new RegExp(schema.pattern!)

  it('the CRD carries the pattern, written for the API server\'s RE2 (no lookaround, no backreferences)', () => {
    expect(schema.pattern).toBe(IMAGE_REFERENCE_PATTERN)
    expect(schema.pattern).not.toMatch(/\(\?[=!<]|\\[1-9]/)
  })

  it.each(valid)('accepts %s', (ref) => {
    expect(crdPattern.test(ref)).toBe(true)
    expect(imageReferenceProblem(ref)).toBeUndefined()
  })

  it.each(invalid)('refuses %j in the CRD and in livesim validate, saying why', (ref) => {
    expect(crdPattern.test(ref)).toBe(false)
    const problem = imageReferenceProblem(ref)
    expect(problem).toBeDefined()
    expect(problem).not.toBe('not an image reference (e.g. redis:7.2, registry.example:5000/team/app:1.0, or app@sha256:<64 hex digits>)')
  })

  it(`a repository name over ${IMAGE_NAME_MAX} characters: within the CRD's bounds, refused by livesim validate`, () => {
    const ref = `registry.example/${'a'.repeat(IMAGE_NAME_MAX)}:7`
    expect(crdPattern.test(ref) && ref.length <= schema.maxLength!).toBe(true)
    expect(imageReferenceProblem(ref)).toMatch(/at most 255/)
  })
})

describe('livesim validate with live.image', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'livesim-image-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('exits 1 naming each bad field, without a stack trace', () => {
    const file = path.join(dir, 'bad.yaml')
    writeFileSync(
      file,
      `apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: images }
spec:
  endTime: 1s
  hosts:
    - name: db
      components:
        - name: a
          live: { image: "MyOrg/redis:7", command: [redis-server] }
        - name: b
          live: { image: "redis:7" }
`,
    )
    const r = spawnSync(process.execPath, [path.join(ROOT, 'sim-runtime/cli/main.ts'), 'validate', file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    expect(r.status, r.stderr).toBe(1)
    expect(r.stderr).toContain('spec.hosts[0].components[0].live.image: string "MyOrg/redis:7" is not allowed: repository names are lowercase: "MyOrg"')
    expect(r.stderr).toContain("spec.hosts[0].components[1].live.command: required field is missing: with image, command names the program in the image")
    expect(r.stderr).not.toContain('    at ')
  })
})
