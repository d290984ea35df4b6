// Child of the HTTP/2 transport-floor measurement in bench/barrier.ts: open one POST stream to the
// coordinator over node:http2 (the leader's settings, passed as JSON, and Nagle off, as
// sim-runtime/sync/runtime.ts connects) and answer every FRAME-byte frame with a FRAME-byte frame.
// No livesim code runs here: this is what the transport alone costs per barrier.
//   node bench/h2-barrier-child.ts <port> <frameBytes> <settingsJson>
import http2 from 'node:http2'
import net from 'node:net'

const port = Number(process.argv[2])
const frame = Number(process.argv[3])
const settings = JSON.parse(process.argv[4] ?? '{}') as http2.Settings
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(frame) || frame <= 0) {
  process.stderr.write('usage: node bench/h2-barrier-child.ts <port> <frameBytes> <settingsJson>\n')
  process.exit(2)
}

const session = http2.connect(`http://127.0.0.1:${port}`, {
  settings,
  createConnection: () => net.connect({ host: '127.0.0.1', port, noDelay: true }),
})
const fail = (err: Error) => {
  process.stderr.write(`h2-barrier-child: ${err.message}\n`)
  process.exit(1)
}
session.on('error', fail)
const stream = session.request({ ':method': 'POST', ':path': '/barrier' })
const reply = Buffer.alloc(frame, 0x52)
let pending = 0
stream.on('data', (chunk: Buffer) => {
  pending += chunk.length
  while (pending >= frame) {
    pending -= frame
    stream.write(reply)
  }
})
stream.on('error', fail)
stream.on('end', () => {
  stream.end()
  session.close()
})
