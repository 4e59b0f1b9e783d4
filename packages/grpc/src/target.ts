// `nacos:///<service>` and `nacos://<namespace>/<service>`: what a gRPC channel target names.
import { experimental } from '@grpc/grpc-js'
import { errorCodes, GrpcError } from './errors.ts'

export interface NacosTarget {
  service: string
  /** The authority part, when given: must be the Discovery's namespace. */
  namespace: string | undefined
}

// Nacos service names: letters, digits and . : _ - (plus `group@@` in front).
const SERVICE = /^(?:[\w.:-]{1,128}@@)?[\w.:-]{1,512}$/

/**
 * @throws {GrpcError} `FLOWTAG_GRPC_BAD_TARGET` for an empty or malformed service name.
 */
export function parseTarget (uri: experimental.GrpcUri): NacosTarget {
  const service = uri.path.startsWith('/') ? uri.path.slice(1) : uri.path
  if (!SERVICE.test(service)) {
    throw new GrpcError(errorCodes.BAD_TARGET, `@flowtag/grpc: invalid target "${experimental.uriToString(uri)}": expected nacos:///<service> (or nacos://<namespace>/<service>)`)
  }
  const namespace = uri.authority === undefined || uri.authority === '' ? undefined : uri.authority
  return { service, namespace }
}
