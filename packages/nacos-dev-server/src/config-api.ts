import { CONFIG_TYPES, configTenant, type ConfigItem, type ConfigStore } from './config-store.ts'
import { HttpAnswer } from './errors.ts'
import { optional, text, json, type Call, type Handler, type Reply } from './http.ts'
import type { LongPolls } from './long-poll.ts'
import { parseListening } from './long-poll.ts'
import { ok } from './naming-api.ts'
import { BadParam, type Flavour } from './params.ts'
import type { ResolvedOptions } from './options.ts'

interface Deps {
  store: ConfigStore
  polls: LongPolls
  opts: ResolvedOptions
}

const KEY_CHARS = /^[a-zA-Z0-9_\-.:]+$/

/** Nacos's ParamUtils checks; v1 config answers them as `caused: <message>;`. */
function keyOf (call: Call, flavour: Flavour, compat: string): { tenant: string; group: string; dataId: string } {
  const groupParam = flavour === 'v1' ? 'group' : 'groupName'
  const dataId = optional(call, 'dataId')
  const group = optional(call, groupParam)
  const tenantRaw = optional(call, flavour === 'v1' ? 'tenant' : 'namespaceId') ?? ''
  if (dataId === undefined) throw new BadParam('Required request parameter \'dataId\' for method parameter type String is not present', true)
  if (group === undefined) throw new BadParam(`Required request parameter '${groupParam}' for method parameter type String is not present`, true)
  if (dataId.length > 256 || !KEY_CHARS.test(dataId)) throw new BadParam(`invalid dataId : ${dataId}`)
  if (group.length > 128 || !KEY_CHARS.test(group)) throw new BadParam(`invalid group : ${group}`)
  if (tenantRaw.length > 128 || (tenantRaw !== '' && !KEY_CHARS.test(tenantRaw))) throw new BadParam('invalid tenant')
  return { tenant: configTenant(tenantRaw, compat), group, dataId }
}

function v1 (fn: (call: Call) => Reply | undefined): Handler {
  return (call) => {
    try {
      return fn(call)
    } catch (err) {
      if (err instanceof BadParam) throw new HttpAnswer(400, `caused: ${err.message};`)
      throw err
    }
  }
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json;charset=UTF-8',
  xml: 'application/xml;charset=UTF-8',
  html: 'text/html;charset=UTF-8'
}

function typeOf (call: Call): string {
  const t = optional(call, 'type')
  return t !== undefined && CONFIG_TYPES.has(t) ? t : 'text'
}

function content (call: Call, flavour: Flavour, opts: ResolvedOptions): string {
  const c = call.params.get('content')
  if (c === null || c.trim() === '') {
    throw new BadParam(flavour === 'v1' ? 'Required request parameter \'content\' for method parameter type String is not present' : 'Required parameter \'content\' type String is not present', true)
  }
  if (c.length > opts.configMaxContent) throw new BadParam(`invalid content, over ${opts.configMaxContent}`)
  return c
}

const v3Item = (item: ConfigItem) => ({
  id: null,
  dataId: item.dataId,
  groupName: item.group,
  namespaceId: item.tenant === '' ? 'public' : item.tenant,
  content: item.content,
  md5: item.md5,
  contentType: item.type,
  type: item.type,
  lastModified: item.lastModified,
  encryptedDataKey: '',
  isBeta: false,
  tag: null
})

export function configV1 (d: Deps): Record<string, Handler> {
  const { store, polls, opts } = d
  return {
    'GET /nacos/v1/cs/configs': v1((call) => {
      const k = keyOf(call, 'v1', opts.compat)
      const item = store.get(k.tenant, k.group, k.dataId)
      if (item === undefined) return text('config data not exist\n', 404)
      return {
        body: item.content,
        contentType: CONTENT_TYPES[item.type] ?? 'text/plain;charset=UTF-8',
        headers: {
          'content-md5': item.md5,
          'config-type': item.type,
          'last-modified': new Date(item.lastModified).toUTCString(),
          'cache-control': 'no-cache,no-store'
        }
      }
    }),

    'POST /nacos/v1/cs/configs': v1((call) => {
      const k = keyOf(call, 'v1', opts.compat)
      const body = content(call, 'v1', opts)
      const cas = call.headers.casmd5
      if (typeof cas === 'string' && cas !== '' && store.get(k.tenant, k.group, k.dataId)?.md5 !== cas) {
        throw new HttpAnswer(500, 'caused: Cas publish fail, server md5 may have changed.;')
      }
      store.publish(k.tenant, k.group, k.dataId, body, typeOf(call))
      return json(true)
    }),

    'DELETE /nacos/v1/cs/configs': v1((call) => {
      const k = keyOf(call, 'v1', opts.compat)
      store.remove(k.tenant, k.group, k.dataId)
      return json(true)
    }),

    'POST /nacos/v1/cs/configs/listener': v1((call) => {
      const keys = parseListening(call.params.get('Listening-Configs'), opts.compat)
      const header = call.headers['long-pulling-timeout']
      const noHangup = call.headers['long-pulling-timeout-no-hangup'] === 'true'
      const timeout = typeof header === 'string' ? Number(header) : NaN
      // Without the header (or with no-hangup) Nacos does a short poll: answer now.
      const hold = Number.isFinite(timeout) && !noHangup ? Math.max(opts.longPollMinMs, timeout - 500) : undefined
      polls.handle(keys, call.res, hold)
      return undefined
    })
  }
}

/** v3: the client API reads; the admin API (login required on Nacos 3) publishes and deletes. */
export function configV3 (d: Deps): Record<string, Handler> {
  const { store, opts } = d
  const get = (call: Call) => {
    const k = keyOf(call, 'v3', opts.compat)
    const item = store.get(k.tenant, k.group, k.dataId)
    // Nacos 3 answers a missing config with HTTP 200 and a code, not 404.
    if (item === undefined) return json({ code: 20004, message: 'resource not found', data: null })
    return ok(v3Item(item))
  }
  return {
    'GET /nacos/v3/client/cs/config': get,
    'GET /nacos/v3/admin/cs/config': get,
    'POST /nacos/v3/admin/cs/config': (call) => {
      const k = keyOf(call, 'v3', opts.compat)
      store.publish(k.tenant, k.group, k.dataId, content(call, 'v3', opts), typeOf(call))
      return ok(true)
    },
    'DELETE /nacos/v3/admin/cs/config': (call) => {
      const k = keyOf(call, 'v3', opts.compat)
      store.remove(k.tenant, k.group, k.dataId)
      return ok(true)
    }
  }
}
