// What every gRPC request of this client shares, naming or config: the access token in the
// headers (with one fresh login on a refusal), and how the requests name a namespace.
import { errorCodes, type NacosError } from './errors.ts'
import type { GrpcConnection } from './grpc-connection.ts'
import type { ServerRequester } from './http.ts'

/** The namespace as naming requests name it: `public` for the default ('') one. */
export const nsName = (ns: string): string => (ns === '' ? 'public' : ns)
/** The namespace as config requests name it (`tenant`): '' for the default (`public`) one. */
export const tenant = (ns: string): string => (ns === 'public' ? '' : ns)

async function headers (r: ServerRequester): Promise<Record<string, string>> {
  const token = await r.token?.()
  return token === undefined ? {} : { accessToken: token }
}

/** One call with the token in the headers; a 403 logs in again once and retries. */
export async function call (conn: GrpcConnection, r: ServerRequester, type: string, body: Record<string, unknown>) {
  try {
    return await conn.request(type, body, await headers(r))
  } catch (err) {
    if ((err as NacosError).code !== errorCodes.AUTH || r.dropToken === undefined) throw err
    r.dropToken()
    return conn.request(type, body, await headers(r))
  }
}
