// Importing this module registers the built-in component kinds.
import './client.ts'
import './server.ts'
import './phold.ts'
export * from './component.ts'
export { loadCustomComponents } from './custom.ts'
