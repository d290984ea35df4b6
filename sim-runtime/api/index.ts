// The API surface shared by the runtime, the CLI and the operator.
export * from './schema.ts'
export * from './plan.ts'
export * from './units.ts'
export * from './validate.ts'
