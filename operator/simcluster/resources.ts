// The API resources of livesim's own kinds, for the REST client (operator/kube/rest.ts knows only
// the built-in ones).
import { Resource } from '../kube/rest.ts'

export const SIM = {
  clusters: new Resource('livesim.dev', 'v1alpha1', 'simclusters', 'SimCluster'),
  hosts: new Resource('livesim.dev', 'v1alpha1', 'simhosts', 'SimHost'),
}
