// accessKey/secretKey request signing (Alibaba Cloud MSE / ACM style, HMAC-SHA1, base64):
// config calls carry Spas-* headers over `tenant+group+timestamp`; naming calls carry ak/data/signature
// params over `timestamp@@serviceName`. The secret itself never leaves the process.
import { createHmac } from 'node:crypto'

export type SignHint = { kind: 'config'; tenant: string | undefined; group: string | undefined } | { kind: 'naming'; serviceName: string | undefined }

export interface Signed {
  headers: Record<string, string>
  query: Record<string, string>
}

const hmac = (data: string, key: string): string => createHmac('sha1', key).update(data, 'utf8').digest('base64')

export function sign (hint: SignHint, accessKey: string, secretKey: string, now: number = Date.now()): Signed {
  const ts = String(now)
  if (hint.kind === 'config') {
    const resource = [hint.tenant, hint.group].filter((s) => s !== undefined && s !== '').join('+')
    const data = resource === '' ? ts : `${resource}+${ts}`
    return { headers: { 'Spas-AccessKey': accessKey, timeStamp: ts, 'Spas-Signature': hmac(data, secretKey) }, query: {} }
  }
  const data = hint.serviceName === undefined || hint.serviceName === '' ? ts : `${ts}@@${hint.serviceName}`
  return { headers: {}, query: { ak: accessKey, data, signature: hmac(data, secretKey) } }
}
