import { readFileSync } from 'node:fs'
import path from 'node:path'
import { load } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { CRD_FILES, renderChartCrdTemplates, renderCrdFiles } from '../../sim-runtime/api/crds.ts'

const root = path.join(import.meta.dirname, '..', '..')

function walk(node: unknown, visit: (n: Record<string, unknown>, at: string) => void, at = ''): void {
  if (node === null || typeof node !== 'object') return
  if (!Array.isArray(node)) visit(node as Record<string, unknown>, at)
  for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}.${k}`)
}

describe('CRDs', () => {
  it('crds/ matches what the API schema generates (run `npm run gen:crds` after changing the API)', () => {
    const fresh = renderCrdFiles()
    for (const name of CRD_FILES) {
      expect(readFileSync(path.join(root, 'crds', name), 'utf8'), `crds/${name} is stale`).toBe(fresh[name])
    }
  })
  it('the chart carries the same CRDs (run `npm run gen:crds` after changing the API)', () => {
    for (const [name, text] of Object.entries(renderChartCrdTemplates())) {
      expect(readFileSync(path.join(root, 'charts', 'livesim', 'templates', name), 'utf8'), `charts/livesim/templates/${name} is stale`).toBe(text)
    }
  })
  it('are structural: no additionalProperties:false, no const, boolean exclusive bounds, types everywhere', () => {
    for (const text of Object.values(renderCrdFiles())) {
      const crd = load(text) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } }
      walk(crd.spec.versions[0]!.schema.openAPIV3Schema, (n, at) => {
        expect(n.additionalProperties, at).not.toBe(false)
        expect('const' in n, at).toBe(false)
        if ('exclusiveMinimum' in n) expect(typeof n.exclusiveMinimum, at).toBe('boolean')
        if ('properties' in n) expect(n.type, at).toBe('object')
      })
    }
  })
  it('carry names, short names, category, status subresource and printer columns', () => {
    const crd = load(renderCrdFiles()[CRD_FILES[0]]!) as {
      spec: { names: { shortNames: string[]; categories: string[] }; versions: { subresources: unknown; additionalPrinterColumns: { name: string }[] }[] }
    }
    expect(crd.spec.names.shortNames).toEqual(['simc'])
    expect(crd.spec.names.categories).toEqual(['livesim'])
    expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} })
    expect(crd.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual(['Phase', 'Hosts', 'VirtualTime', 'Progress', 'Slowdown', 'Age', 'Runtimes', 'Slowest', 'Message'])
  })
  it('SimSweep: short name simsw, category livesim, status subresource, Phase, Trials, Best and Age columns', () => {
    const crd = load(renderCrdFiles()[CRD_FILES[2]]!) as {
      spec: { names: { kind: string; plural: string; shortNames: string[]; categories: string[] }; versions: { subresources: unknown; additionalPrinterColumns: { name: string; jsonPath: string; priority?: number }[] }[] }
    }
    expect(crd.spec.names).toMatchObject({ kind: 'SimSweep', plural: 'simsweeps', shortNames: ['simsw'], categories: ['livesim'] })
    expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} })
    const columns = crd.spec.versions[0]!.additionalPrinterColumns.filter((c) => !c.priority)
    expect(columns.map((c) => [c.name, c.jsonPath])).toEqual([
      ['Phase', '.status.phase'],
      ['Trials', '.status.trialsSummary'],
      ['Best', '.status.bestSummary'],
      ['Age', '.metadata.creationTimestamp'],
    ])
  })
  it("SimSweep's template carries the same CEL rules as a SimCluster's spec, without its immutability rule", () => {
    type Node = { properties: Record<string, Node>; 'x-kubernetes-validations'?: { rule: string }[] }
    const specOf = (i: 0 | 2) => (load(renderCrdFiles()[CRD_FILES[i]]!) as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } }).spec.versions[0]!.schema.openAPIV3Schema.properties.spec!
    const rules = (n: Node) => (n['x-kubernetes-validations'] ?? []).map((r) => r.rule)
    const cluster = specOf(0)
    const template = specOf(2).properties.template!
    expect(rules(template)).toEqual(rules(cluster).filter((r) => !r.includes('oldSelf')))
    const component = (spec: Node) => (spec.properties.hosts as unknown as { items: { properties: { components: { items: Node } } } }).items.properties.components.items
    expect(rules(component(template))).toEqual(['has(self.model) != has(self.live)'])
    expect(rules(component(template))).toEqual(rules(component(cluster)))
    expect(rules(specOf(2)).some((r) => r.includes('oldSelf.template'))).toBe(true)
  })
})
