// Host lists in a short form: the hosts of a runtime that carries many (spec.placement) travel in a
// SimHost's spec, a pod's arguments and a ConfigMap, where a name per host would grow with the
// hosts (an argument is at most 128 KiB). Consecutive replicas of a group are a range, client-0..24;
// anything else stays a name. "client-0..2,db-0" is client-0, client-1, client-2, db-0.

/** A replica name: its group and replica number (host names are <group>-<replica>, plan.ts). */
const REPLICA = /^(.+)-(0|[1-9][0-9]*)$/
const RANGE = /^(.+)-(0|[1-9][0-9]*)\.\.(0|[1-9][0-9]*)$/
/** Replicas one range may expand to: more than any cluster holds (LIMITS.hostsTotalMax). */
const RANGE_MAX = 100_000

/** Names in order, consecutive replicas of one group written as a range. */
export function formatHostList(names: readonly string[]): string {
  const out: string[] = []
  let i = 0
  while (i < names.length) {
    const m = REPLICA.exec(names[i]!)
    if (!m) {
      out.push(names[i]!)
      i++
      continue
    }
    const first = Number(m[2])
    let j = i + 1
    while (j < names.length && names[j] === `${m[1]}-${first + (j - i)}`) j++
    out.push(j - i > 1 ? `${m[1]}-${first}..${first + (j - i) - 1}` : names[i]!)
    i = j
  }
  return out.join(',')
}

/** The names of a list formatHostList wrote (or of plain comma-separated names); throws on a bad range. */
export function parseHostList(text: string): string[] {
  const out: string[] = []
  for (const raw of text.split(',')) {
    const item = raw.trim()
    if (!item) continue
    const m = RANGE.exec(item)
    if (!m) {
      out.push(item)
      continue
    }
    const first = Number(m[2])
    const last = Number(m[3])
    if (last < first || last - first >= RANGE_MAX) throw new Error(`host range ${item}: the last replica must be at least the first and the range at most ${RANGE_MAX} replicas`)
    for (let r = first; r <= last; r++) out.push(`${m[1]}-${r}`)
  }
  return out
}
