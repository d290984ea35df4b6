// What a user's own component module needs: the message type and its constants, and the
// interfaces to implement. See docs/components.md.
export { Message, MSG_ERROR, MSG_REQUEST, MSG_RESPONSE, MSG_USER, newMessage } from '../engine/message.ts'
export { Histogram } from '../engine/histogram.ts'
export type { Component, ComponentContext } from './component.ts'
export { round } from './component.ts'
