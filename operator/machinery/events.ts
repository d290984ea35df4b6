// Kubernetes Events (core/v1) about an object, for every controller of the operator.
import type { Logger } from 'pino'
import { R, type KubeClient, type KubeObject } from '../kube/rest.ts'

/**
 * Record an Event about `obj` at `now`. An Event is a courtesy to whoever runs `kubectl describe`:
 * one the API server does not take is logged at debug level and never fails a reconcile.
 */
export async function recordEvent(d: { client: KubeClient; log: Logger }, now: Date, obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
  const ns = obj.metadata.namespace!
  const ts = now.toISOString()
  try {
    await d.client.create(R.events.collection(ns), {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${obj.metadata.name}.`, namespace: ns },
      involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid },
      type,
      reason,
      message,
      source: { component: 'livesim-operator' },
      reportingComponent: 'livesim.dev/operator',
      reportingInstance: process.env.HOSTNAME ?? 'livesim-operator',
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
    })
  } catch (err) {
    d.log.debug({ err: (err as Error).message }, 'could not record an event')
  }
}
