// SimClusters shared by the operator's unit tests.
import { manifest } from '../../helpers.ts'

/**
 * "mixed": modelled hosts (a client and a server) and a live redis-server on host group db
 * (`dbReplicas` replicas).
 */
export function mixedCluster(dbReplicas = 1) {
  return manifest(`
apiVersion: livesim.dev/v1alpha1
kind: SimCluster
metadata: { name: mixed }
spec:
  endTime: 100ms
  hosts:
    - name: client
      components:
        - name: load
          model: { kind: Client, target: api/http, openLoop: { rate: 100 } }
    - name: api
      components:
        - name: http
          model: { kind: Server, service: { distribution: Constant, mean: 1ms } }
    - name: db
      replicas: ${dbReplicas}
      components:
        - name: redis
          live: { command: [redis-server, --bind, $(LIVESIM_BIND_ADDR), --port, '6379'], ports: [{ name: redis, port: 6379 }] }
`)
}
