// Names shared by the resolver, the balancer and the interceptor. Channel option keys carry
// grpc-js's exclusion prefix so they never split the subchannel pool.
import { experimental } from '@grpc/grpc-js'

const EXCLUDED = experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX

/** Channel option that names the FlowTagGrpc of a channel. */
export const ROUTING_OPTION = `${EXCLUDED}.flowtag.routing`
/** Resolver attribute (merged into the balancer's channel options) that carries the instance list. */
export const INSTANCES_ATTRIBUTE = `${EXCLUDED}.flowtag.instances`
/** The load-balancing policy's name in service configs. */
export const LB_NAME = 'flowtag_lanes'
/** Metadata of a retry: the addresses (`ip:port`) already tried, not to be picked again. */
export const TRIED_KEY = 'x-flowtag-tried'
/** ROUTING_ERROR_KEY of a retry the budget refused (the caller gets the failure that caused it instead). */
export const RETRY_REFUSED = 'FLOWTAG_GRPC_RETRY_REFUSED'
