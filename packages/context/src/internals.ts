/**
 * `@flowtag/context/internals`: the pieces other flowtag packages build on (the lane grammar, the
 * W3C baggage parser, the fallback receipt's writers and readers), kept off the root so the root
 * is what an app uses. Supported, but shaped by flowtag's own needs: read the changelog before
 * relying on them from outside.
 *
 * @module
 */
export { TAG_PATTERN } from './codec.ts'
export { parseBaggage, type BaggageEntry } from './baggage.ts'
export {
  recordFallback, mergeFallback, fallbackOf, MAX_FALLBACK_ENTRIES, MAX_FALLBACK_LENGTH,
  type FallbackReason
} from './receipt.ts'
