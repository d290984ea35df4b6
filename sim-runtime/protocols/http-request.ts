// HTTP/1.1 requests as a load generator sends them: request line, Host, the user's headers, and for
// a body its Content-Type and Content-Length; "Connection: close" when the client does not keep
// connections alive. The bytes are what a modelled client or server puts on the simulated network.

export interface HttpRequestSpec {
  method: string
  /** origin-form request target: /path?query */
  path: string
  /** The Host header, unless `headers` has one. */
  host: string
  headers?: readonly { name: string; value: string }[]
  /** Body bytes (sent with Content-Length when the method is not GET, or when bodyBytes > 0). */
  bodyBytes?: number
  /** false: ask the server to close the connection after the response. */
  keepAlive?: boolean
}

/** Header names the encoder writes itself: a user's value would contradict the framing. */
export const MANAGED_HEADERS = ['content-length', 'transfer-encoding', 'connection'] as const

const BODY_BYTE = 0x78 // 'x'

/** The request's bytes. Throws on a header the encoder manages or a value with CR or LF. */
export function encodeRequest(r: HttpRequestSpec): Buffer {
  const lines = [`${r.method} ${r.path} HTTP/1.1`]
  const has = new Set<string>()
  for (const h of r.headers ?? []) {
    const name = h.name.toLowerCase()
    if ((MANAGED_HEADERS as readonly string[]).includes(name)) throw new Error(`header ${h.name} is set by livesim, not by the request spec`)
    if (/[\r\n]/.test(h.value) || /[\r\n:\s]/.test(h.name)) throw new Error(`header ${JSON.stringify(h.name)} has a malformed name or value`)
    has.add(name)
  }
  if (!has.has('host')) lines.push(`Host: ${r.host}`)
  if (!has.has('user-agent')) lines.push('User-Agent: livesim')
  for (const h of r.headers ?? []) lines.push(`${h.name}: ${h.value}`)
  const bodyBytes = r.bodyBytes ?? 0
  const withBody = bodyBytes > 0 || (r.method !== 'GET' && r.method !== 'HEAD')
  if (withBody) {
    if (!has.has('content-type')) lines.push('Content-Type: application/octet-stream')
    lines.push(`Content-Length: ${bodyBytes}`)
  }
  if (r.keepAlive === false) lines.push('Connection: close')
  const head = `${lines.join('\r\n')}\r\n\r\n`
  const headBytes = Buffer.byteLength(head, 'latin1')
  const out = Buffer.allocUnsafe(headBytes + bodyBytes)
  out.write(head, 0, 'latin1')
  out.fill(BODY_BYTE, headBytes)
  return out
}
