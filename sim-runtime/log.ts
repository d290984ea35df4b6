// Structured logs: pino, JSON lines on stderr (stdout is kept for results and tables).
import { pino, type Logger } from 'pino'

export function makeLogger(name: string, level = process.env.LIVESIM_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }))
}
