// The objects a SimSweep owns, as pure functions of the sweep and its grid: one trial SimCluster per
// grid point and seed (the very manifest `livesim sweep` runs, sweep/grid.ts trialManifest, so a
// trial gives the same digest here and there) and the ConfigMap `<sweep>-results`. Both carry an
// ownerReference to the sweep, so that deleting the sweep deletes them.
import assert from 'node:assert/strict'
import type { SimSweep } from '../../sim-runtime/api/schema.ts'
import { specHash, trialManifest, type Grid, type Trial } from '../../sim-runtime/sweep/grid.ts'
import { SPEC_HASH_ANNOTATION } from '../../sim-runtime/sweep/run.ts'
import { Resource, type KubeObject } from '../kube/rest.ts'
import { FIELD_MANAGER, L, ownerRef, type SimClusterObject } from '../simcluster/objects.ts'

export const SIM_SWEEPS = new Resource('livesim.dev', 'v1alpha1', 'simsweeps', 'SimSweep')

/** Labels of a trial, as trialManifest sets them (ARCHITECTURE.md, "Experiment fleets"). */
export const SL = {
  sweep: 'livesim.dev/sweep',
  point: 'livesim.dev/point',
} as const

export { SPEC_HASH_ANNOTATION }

export type SimSweepObject = SimSweep & KubeObject & { status?: Record<string, unknown> }

export const resultsName = (sweep: string) => `${sweep}-results`

/** The trial's index in point order, seeds within a point: the order in which trials are created. */
export function trialIndex(grid: Pick<Grid, 'seeds'>, t: Pick<Trial, 'point' | 'seedIndex'>): number {
  return t.point * grid.seeds + t.seedIndex
}

/** `<sweep>-p<point>-s<seed>` → its point and seed index, or undefined for any other name. */
export function parseTrialName(sweep: string, name: string): { point: number; seedIndex: number } | undefined {
  if (!name.startsWith(`${sweep}-p`)) return undefined
  const m = /^([0-9]+)-s([0-9]+)$/.exec(name.slice(sweep.length + 2))
  if (!m) return undefined
  const point = Number(m[1])
  const seedIndex = Number(m[2])
  // One spelling per trial: p01 is not p1.
  if (`${point}-s${seedIndex}` !== name.slice(sweep.length + 2)) return undefined
  return { point, seedIndex }
}

/** The trial's SimCluster as the operator creates it: trialManifest's, in the sweep's namespace, owned by it. */
export function trialObject(sw: SimSweepObject, grid: Grid, t: Trial): SimClusterObject {
  assert(sw.metadata.uid, `SimSweep ${sw.metadata.name} has no uid: it cannot own its trials`)
  const m = trialManifest(grid, t)
  return {
    ...m,
    metadata: {
      ...m.metadata,
      namespace: sw.metadata.namespace,
      labels: { ...m.metadata.labels, [L.managedBy]: FIELD_MANAGER },
      annotations: { [SPEC_HASH_ANNOTATION]: specHash(m) },
      ownerReferences: [ownerRef(sw)],
    },
  } as SimClusterObject
}

/** Whether `o` is owned by this very sweep (not by an earlier one of the same name). */
export function ownedBy(o: KubeObject, sw: KubeObject): boolean {
  return o.metadata.ownerReferences?.some((r) => r.kind === 'SimSweep' && r.uid === sw.metadata.uid) ?? false
}
