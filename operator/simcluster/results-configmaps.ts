// A run's results as ConfigMaps that the API server accepts: a ConfigMap holds at most 1 MiB of data
// (and etcd takes requests of at most 1.5 MiB), so each one here carries at most
// CONFIGMAP_PAYLOAD_MAX bytes of payload, counted as sent: data as UTF-8, binaryData as base64.
//
// - The results JSON fits: `<cluster>-results`, data results.json (the same text `livesim run` writes).
// - Its gzip fits: `<cluster>-results`, binaryData results.json.gz.
// - Else (every host and link of a large cluster): `<cluster>-results` holds summary.json, the results
//   without `hosts` and `links`, and the gzip is split into `<cluster>-results-part-1` … `-part-N`,
//   binaryData results.json.gz each, N ≤ RESULTS_PARTS_MAX; their bytes in order are the gzip.
// - Beyond that, only summary.json is stored and the ConfigMap says what was left out and why.
// A default (per group) results document of a 1,000-host cluster is tens of KB: the first case.
import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { resultsJson, type SimResults } from '../../sim-runtime/sync/results.ts'
import type { KubeObject } from '../kube/rest.ts'
import { L, names, ownerRef, type SimClusterObject } from './objects.ts'

/** Payload bytes of one ConfigMap: 900 KiB, under the API server's 1 MiB with room for metadata. */
export const CONFIGMAP_PAYLOAD_MAX = 900 * 1024
/** Parts a results gzip may be split into: 16 × 675 KiB of gzip at most. */
export const RESULTS_PARTS_MAX = 16

export const partName = (cluster: string, i: number) => `${names.results(cluster)}-part-${i}`

/** Bytes of payload of a ConfigMap as the API server is sent it. */
export function payloadBytes(cm: KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> }): number {
  let n = 0
  for (const v of Object.values(cm.data ?? {})) n += Buffer.byteLength(v)
  for (const v of Object.values(cm.binaryData ?? {})) n += v.length
  return n
}

/** The ConfigMaps that hold `results`, the first named `<cluster>-results`; each within CONFIGMAP_PAYLOAD_MAX. */
export function resultsConfigMaps(sc: SimClusterObject, results: SimResults): KubeObject[] {
  const json = resultsJson(results)
  const sha256 = createHash('sha256').update(json).digest('hex')
  const cm = (name: string, body: Record<string, unknown>, annotations: Record<string, string> = {}): KubeObject => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace: sc.metadata.namespace,
      labels: { [L.cluster]: sc.metadata.name, [L.managedBy]: 'livesim-operator' },
      annotations: { 'livesim.dev/sha256': sha256, ...annotations },
      ownerReferences: [ownerRef(sc)],
    },
    ...body,
  })
  const first = names.results(sc.metadata.name)
  if (Buffer.byteLength(json) <= CONFIGMAP_PAYLOAD_MAX) return [cm(first, { data: { 'results.json': json } })]
  const gz = gzipSync(json)
  const b64 = gz.toString('base64')
  if (b64.length <= CONFIGMAP_PAYLOAD_MAX) return [cm(first, { binaryData: { 'results.json.gz': b64 } })]
  const summary = resultsJson({ ...results, hosts: {}, links: {} })
  // Raw bytes per part whose base64 stays within the payload limit.
  const partBytes = Math.floor(CONFIGMAP_PAYLOAD_MAX / 4) * 3
  const parts = Math.ceil(gz.length / partBytes)
  if (parts > RESULTS_PARTS_MAX || Buffer.byteLength(summary) > CONFIGMAP_PAYLOAD_MAX) {
    const why = `the results are ${gz.length} bytes of gzip, more than ${RESULTS_PARTS_MAX} ConfigMaps of ${partBytes} bytes hold; ask for less detail (spec.results.detail Groups)`
    const small = resultsJson({ ...results, hosts: {}, links: {}, groups: {} })
    const kept = Buffer.byteLength(summary) <= CONFIGMAP_PAYLOAD_MAX ? summary : small
    return [cm(first, { data: { 'summary.json': kept } }, { 'livesim.dev/omitted': kept === summary ? `hosts and links: ${why}` : `hosts, links and groups: ${why}` })]
  }
  const out = [cm(first, { data: { 'summary.json': summary } }, { 'livesim.dev/parts': String(parts) })]
  for (let i = 1; i <= parts; i++) {
    const chunk = gz.subarray((i - 1) * partBytes, i * partBytes)
    out.push(cm(partName(sc.metadata.name, i), { binaryData: { 'results.json.gz': chunk.toString('base64') } }, { 'livesim.dev/part': `${i}/${parts}` }))
  }
  return out
}
