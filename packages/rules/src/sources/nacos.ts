import { z } from 'zod'
import { describeBadOption } from '@flowtag/errors'
import { errorCodes, RulesError } from '../errors.ts'
import type { RuleSource } from '../source.ts'

/**
 * The part of a Nacos config client this source needs. `@flowtag/nacos`'s `client.config`
 * has this shape; so can any other client.
 */
export interface NacosConfigLike {
  get(dataId: string, group: string): Promise<string | undefined>
  listen(dataId: string, group: string, listener: (content: string | undefined) => void): () => void
}

const NacosSourceOptions = z.strictObject({
  config: z.custom<NacosConfigLike>((v) => typeof v === 'object' && v !== null &&
    typeof (v as NacosConfigLike).get === 'function' && typeof (v as NacosConfigLike).listen === 'function',
  { message: 'expected an object with get(dataId, group) and listen(dataId, group, listener)' }),
  dataId: z.string().min(1).max(256),
  group: z.string().min(1).max(128).default('DEFAULT_GROUP')
})
export type NacosSourceOptions = z.input<typeof NacosSourceOptions>

/**
 * A RuleSource over one Nacos config (dataId + group). The client is not closed by this source.
 *
 * @param options `{ config, dataId, group? }`: `config` is `NacosClient.config` (or anything with
 *   `get` and `listen`); `dataId` 1-256 characters; `group` @default 'DEFAULT_GROUP'
 * @throws {RulesError} `FLOWTAG_RULES_BAD_OPTION` naming the field when an option is invalid
 */
export function nacosSource (options: NacosSourceOptions): RuleSource {
  const parsed = NacosSourceOptions.safeParse(options)
  if (!parsed.success) {
    const bad = describeBadOption('@flowtag/rules: nacosSource', parsed.error, { schema: NacosSourceOptions })
    throw new RulesError(errorCodes.BAD_OPTION, bad.message, bad)
  }
  const { config, dataId, group } = parsed.data
  const name = `nacos ${group}/${dataId}`
  const stops = new Set<() => void>()
  return {
    name,
    async read () {
      try {
        return await config.get(dataId, group)
      } catch (err) {
        throw new RulesError(errorCodes.SOURCE, `${name}: ${(err as Error).message}`, { cause: err })
      }
    },
    watch (onDocument, onError) {
      let unlisten: () => void
      try {
        unlisten = config.listen(dataId, group, (content) => onDocument(content))
      } catch (err) {
        onError(new RulesError(errorCodes.SOURCE, `${name}: listen failed: ${(err as Error).message}`, { cause: err }))
        return () => {}
      }
      const stop = () => { stops.delete(stop); unlisten() }
      stops.add(stop)
      return stop
    },
    close () { for (const stop of [...stops]) stop() }
  }
}
