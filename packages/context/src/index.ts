export { runWithFlow, currentFlow, currentTag, isShadow, type FlowContext, type FlowDecision } from './flow.ts'
export { FLOW_TAG_HEADER, BAGGAGE_KEY, parseTag, SHADOW_HEADER, SHADOW_BAGGAGE_KEY } from './codec.ts'
export { writeFlowHeaders, readFlowHeaders, readShadowMarker, laneBaggageMember, type Carrier } from './propagation.ts'
export { shadowAllowsMethod, shadowCopyFlow, isShadowCopy, SHADOW_SAFE_METHODS } from './shadow-guard.ts'
export { FlowTagPropagator, flowFromContext, contextWithFlow } from './propagator.ts'
export { signTag, verifySignedTag, type SigningKey, type SignedTagResult, type SignedTagRefusal } from './signing.ts'
export { signingOptionsSchema, signingKeySchema, laneSigner, type SigningOptions } from './signing-options.ts'
export { FlowTagger, createFlowTagger, type FlowTagStats, type RequestFacts } from './tagger.ts'
export { FlowTagOptionsSchema, type FlowTagOptions, type RuleStoreLike, type TagLogger } from './options.ts'
export { LANE_ATTRIBUTE, RULE_ATTRIBUTE, RULE_VERSION_ATTRIBUTE } from './otel.ts'
export { ContextError, errorCodes, type ContextErrorCode } from './errors.ts'
export {
  checkOutboundFlow, setTagLossMode, tagLossMode, tagLossCounts, resetTagLossCounts, runUntagged,
  type TagLossMode, type TagLossReason
} from './tag-loss.ts'
export { FALLBACK_BAGGAGE_KEY, FALLBACK_HEADER } from './receipt.ts'
// Deprecated: moved to `@flowtag/context/internals` (the root keeps them for one minor version).
export {
  TAG_PATTERN, parseBaggage, recordFallback, mergeFallback, fallbackOf, MAX_FALLBACK_ENTRIES, MAX_FALLBACK_LENGTH,
  type BaggageEntry, type FallbackReason
} from './root-deprecated.ts'
