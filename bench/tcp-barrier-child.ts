// Child of the raw-TCP barrier baseline (bench/barrier.ts): connect to the coordinator on loopback,
// Nagle off, and answer every FRAME-byte frame with a FRAME-byte frame. Exits when the coordinator
// closes the connection.
//   node bench/tcp-barrier-child.ts <port> [frameBytes]
import net from 'node:net'

const port = Number(process.argv[2])
const frame = Number(process.argv[3] ?? 32)
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(frame) || frame <= 0) {
  process.stderr.write('usage: node bench/tcp-barrier-child.ts <port> [frameBytes]\n')
  process.exit(2)
}

const reply = Buffer.alloc(frame, 0x52)
let pending = 0
const sock = net.connect({ host: '127.0.0.1', port, noDelay: true })
sock.on('data', (chunk: Buffer) => {
  pending += chunk.length
  let n = 0
  while (pending >= frame) {
    pending -= frame
    n++
  }
  // Normally one frame per chunk; if several arrived together, answer each.
  for (let i = 0; i < n; i++) sock.write(reply)
})
sock.on('error', (err) => {
  process.stderr.write(`tcp-barrier-child: ${err.message}\n`)
  process.exit(1)
})
sock.on('end', () => sock.end())
sock.on('close', () => process.exit(0))
