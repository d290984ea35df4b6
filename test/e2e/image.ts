// The image the e2e tests install the chart with, and the pull policy, from the environment:
// LIVESIM_E2E_IMAGE (repository:tag or repository@sha256:…; default livesim:dev) and
// LIVESIM_E2E_PULL_POLICY (Always, IfNotPresent or Never; default Never for livesim:dev, which no
// registry has and the process-backed node never pulls, IfNotPresent for an image you name).
// No vitest import: global-setup.ts uses this too.

export interface E2eImage {
  /** The image reference as the chart renders it: repository:tag or repository@digest. */
  image: string
  repository: string
  tag?: string
  digest?: string
  pullPolicy: 'Always' | 'IfNotPresent' | 'Never'
  /** The chart values that select this image, for `helm install --set`. */
  helmSets: string[]
}

const POLICIES = ['Always', 'IfNotPresent', 'Never'] as const

export function e2eImage(env: NodeJS.ProcessEnv = process.env): E2eImage {
  const ref = env.LIVESIM_E2E_IMAGE || 'livesim:dev'
  const policy = env.LIVESIM_E2E_PULL_POLICY || (env.LIVESIM_E2E_IMAGE ? 'IfNotPresent' : 'Never')
  if (!(POLICIES as readonly string[]).includes(policy)) throw new Error(`LIVESIM_E2E_PULL_POLICY=${policy}: expected one of ${POLICIES.join(', ')}`)
  const pullPolicy = policy as E2eImage['pullPolicy']

  const at = ref.indexOf('@')
  const named = at < 0 ? ref : ref.slice(0, at)
  const digest = at < 0 ? undefined : ref.slice(at + 1)
  // A tag is after the last ':' that follows the last '/' (a registry may have a port: host:5000/x).
  const colon = named.lastIndexOf(':')
  const hasTag = colon > named.lastIndexOf('/')
  const repository = hasTag ? named.slice(0, colon) : named
  const tag = hasTag ? named.slice(colon + 1) : undefined
  if (!repository || (digest === undefined && !tag)) throw new Error(`LIVESIM_E2E_IMAGE=${ref}: expected repository:tag or repository@sha256:<64 hex digits>`)
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`LIVESIM_E2E_IMAGE=${ref}: the digest must be sha256:<64 hex digits>`)

  const image = digest ? `${repository}@${digest}` : `${repository}:${tag}`
  const helmSets = [`image.repository=${repository}`, `image.pullPolicy=${pullPolicy}`]
  if (tag) helmSets.push(`image.tag=${tag}`)
  if (digest) helmSets.push(`image.digest=${digest}`)
  return { image, repository, tag, digest, pullPolicy, helmSets }
}
