// Container image references (live.image): the grammar of the OCI distribution spec's references
// (github.com/distribution/reference), with two rules made explicit that the grammar leaves to
// normalisation: the first path component is a registry only if it has a '.' or a ':port' or is
// localhost (so "MyOrg/app" is an uppercase repository, not a registry called MyOrg), and a digest
// is sha256 (64) or sha512 (128) lowercase hex digits, the algorithms the OCI image spec registers.
// IMAGE_REFERENCE_PATTERN is the schema's (and so the CRD's) pattern; imageReferenceProblem says in
// words what is wrong with a reference the pattern refuses, and what the pattern cannot check.

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*'
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const PORT = '(?::[0-9]+)'
const IPV6 = '\\[[a-fA-F0-9:]+\\]'
/** A registry: a dotted name, localhost or [IPv6], with an optional port; or any host with a port. */
const DOMAIN = `(?:(?:localhost|${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})+|${IPV6})${PORT}?|${DOMAIN_COMPONENT}${PORT})`
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})'

/** registry/repository[:tag][@digest], as above. */
export const IMAGE_REFERENCE_PATTERN = `^${NAME}(?::${TAG})?(?:@${DIGEST})?$`
/** A repository name (registry and path) is at most this long (distribution/reference's NameTotalLengthMax). */
export const IMAGE_NAME_MAX = 255
/** The schema's bound on the whole reference: a name, a tag and a sha512 digest. */
export const IMAGE_REFERENCE_MAX = IMAGE_NAME_MAX + 1 + 128 + 1 + 7 + 128

const pattern = new RegExp(IMAGE_REFERENCE_PATTERN)
const pathComponent = new RegExp(`^${PATH_COMPONENT}$`)
const tagPattern = new RegExp(`^${TAG}$`)
const domainPattern = new RegExp(`^${DOMAIN}$`)

const EXAMPLES = 'e.g. redis:7.2, registry.example:5000/team/app:1.0, or app@sha256:<64 hex digits>'

/** What is wrong with `ref` as an image reference, or undefined if nothing is. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (ref === '') return `an image reference must not be empty (${EXAMPLES})`
  if ([...ref].some((ch) => /\s/.test(ch) || ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) return 'an image reference has no spaces or control characters'
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(ref)
  if (scheme) return `an image reference has no scheme: drop "${scheme[1]}://"`
  const at = ref.indexOf('@')
  if (at >= 0 && ref.indexOf('@', at + 1) >= 0) return 'an image reference has at most one @digest'
  const named = at < 0 ? ref : ref.slice(0, at)
  const digest = at < 0 ? undefined : ref.slice(at + 1)
  if (digest !== undefined) {
    const m = /^([^:]*):([^:]*)(:.*)?$/.exec(digest)
    if (!m) return `a digest is algorithm:hex, e.g. sha256:<64 hex digits>; got ${JSON.stringify(digest)}`
    const [, alg, hex, rest] = m
    if (rest !== undefined) return 'the tag goes before the digest: name:tag@sha256:…'
    const want = alg === 'sha256' ? 64 : alg === 'sha512' ? 128 : undefined
    if (want === undefined) return `a digest's algorithm is sha256 or sha512; got ${JSON.stringify(alg)}`
    if (/[A-F]/.test(hex!)) return `a ${alg} digest is written in lowercase hex digits`
    if (!/^[0-9a-f]*$/.test(hex!) || hex!.length !== want) return `a ${alg} digest is ${want} hex digits; got ${hex!.length} characters ${JSON.stringify(hex!.slice(0, 12))}${hex!.length > 12 ? '…' : ''}`
  }
  // A tag follows the last ':' after the last '/' (a registry's port comes before the first '/').
  const colon = named.lastIndexOf(':')
  const hasTag = colon > named.lastIndexOf('/')
  const name = hasTag ? named.slice(0, colon) : named
  if (hasTag) {
    const tag = named.slice(colon + 1)
    if (tag === '') return 'the tag after ":" is empty'
    if (!tagPattern.test(tag)) return `a tag is 1-128 letters, digits, "_", "." and "-", not starting with "." or "-"; got ${JSON.stringify(tag.slice(0, 40))}`
  }
  if (name.length > IMAGE_NAME_MAX) return `the repository name is ${name.length} characters; at most ${IMAGE_NAME_MAX} are allowed`
  if (name === '') return `an image reference starts with a repository name (${EXAMPLES})`
  const parts = name.split('/')
  const registry = parts.length > 1 && domainPattern.test(parts[0]!) ? parts.shift() : undefined
  if (parts.length > 1 && registry === undefined && /[.:]|^localhost$/.test(parts[0]!)) return `${JSON.stringify(parts[0])} is not a registry host name`
  for (const p of parts) {
    if (p === '') return 'the repository name has an empty path component (a leading, trailing or double "/")'
    if (/[A-Z]/.test(p) && pathComponent.test(p.toLowerCase())) return `repository names are lowercase: ${JSON.stringify(p)}${registry === undefined && parts.length > 1 && p === parts[0] ? ' (a registry has a "." or a :port, or is localhost)' : ''}`
    if (!pathComponent.test(p)) return `a repository path component is lowercase letters and digits, separated by ".", "_", "__" or "-"; got ${JSON.stringify(p)}`
  }
  if (!pattern.test(ref)) return `not an image reference (${EXAMPLES})`
  return undefined
}
