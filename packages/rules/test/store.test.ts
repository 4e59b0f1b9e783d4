import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import {
  createRuleStore, errorCodes, fileSource, nacosSource, RuleStore, RulesError, staticSource,
  type NacosConfigLike, type RuleSource
} from '../src/index.ts'
import { doc } from './fixtures/doc.ts'
import { waitFor } from '@flowtag/test-kit'

t.test('options are validated with coded errors', async (t) => {
  t.throws(() => createRuleStore({} as never), { code: errorCodes.BAD_OPTION, message: /source/ })
  t.throws(() => createRuleStore({ source: staticSource(doc(1)), cacheFile: '' }), { code: errorCodes.BAD_OPTION, message: /cacheFile/ })
  t.throws(() => fileSource(''), { code: errorCodes.BAD_OPTION })
  t.throws(() => fileSource('x.json', { debounceMs: -1 }), { code: errorCodes.BAD_OPTION, message: /debounceMs/ })
  t.throws(() => nacosSource({ config: {} as never, dataId: 'x' }), { code: errorCodes.BAD_OPTION, message: /config/ })
  t.throws(() => nacosSource({ config: { get: async () => '', listen: () => () => {} }, dataId: '' }), { code: errorCodes.BAD_OPTION, message: /dataId/ })
})

t.test('static source: onChange with next and previous, unsubscribe, listener errors contained', async (t) => {
  const source = staticSource(doc(1))
  const warnings: string[] = []
  const store = new RuleStore({ source, logger: { warn: (_o, m) => warnings.push(m), info: () => {} } })
  t.teardown(() => store.close())
  t.equal(store.current, undefined, 'nothing before the first read')
  t.equal(store.evaluate({ headers: {} }), undefined)
  await store.ready
  const seen: Array<[number, number | undefined]> = []
  const off = store.onChange((next, prev) => seen.push([next.version, prev?.version]))
  store.onChange(() => { throw new Error('listener bug') })
  source.set(doc(2))
  source.set(doc(2))
  off()
  source.set(doc(3))
  t.same(seen, [[2, 1]], 'one event per new version; none after unsubscribe; none for identical text')
  t.equal(store.version, 3)
  t.ok(warnings.some((w) => /onChange listener threw/.test(w)), 'a throwing listener is logged, not fatal')
  source.set(undefined)
  t.equal(store.version, 3, 'a deleted document keeps the last good set')
  t.equal(store.stats.sourceErrors, 1)
  const errs: RulesError[] = []
  const offErr = store.onError((e) => errs.push(e))
  source.set('{')
  offErr()
  source.set('{{')
  t.equal(errs.length, 1)
  t.ok(errs[0] instanceof RulesError)
  await store.close()
  await store.close()
  source.set(doc(9))
  t.equal(store.version, 3, 'closed store ignores late documents')
})

t.test('file source: picks up edits, atomic replace and bad edits, debounced', async (t) => {
  const dir = t.testdir({ 'rules.json': doc(1) })
  const file = join(dir, 'rules.json')
  const cacheFile = join(dir, 'cache.json')
  const errors: RulesError[] = []
  const store = createRuleStore({ source: fileSource(file, { debounceMs: 20 }), cacheFile, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  await store.ready
  t.equal(store.version, 1)
  await writeFile(file, doc(2))
  await waitFor('in-place edit', () => store.version === 2)
  await writeFile(join(dir, 'next.tmp'), doc(3))
  await rename(join(dir, 'next.tmp'), file)
  await waitFor('atomic replace (rename)', () => store.version === 3)
  await writeFile(file, '{"version": 4, "default": ')
  await waitFor('bad edit refused', () => errors.length === 1)
  t.equal(errors[0]!.code, errorCodes.INVALID)
  t.equal(store.version, 3, 'last good kept')
  await writeFile(file, doc(5))
  await waitFor('recovers with the next good edit', () => store.version === 5)
  await store.close() // waits for the pending cache write
  t.equal(JSON.parse(await readFile(cacheFile, 'utf8')).version, 5, 'last good persisted to the cache file')
})

t.test('cache file: loaded at start when the source is unavailable, ignored when it answers', async (t) => {
  const dir = t.testdir({ 'cache.json': doc(41) })
  const cacheFile = join(dir, 'cache.json')
  const down: RuleSource = { name: 'down', read: () => Promise.reject(new Error('ECONNREFUSED')), watch: () => () => {} }
  const errors: RulesError[] = []
  const s1 = createRuleStore({ source: down, cacheFile, onError: (e) => errors.push(e) })
  t.teardown(() => s1.close())
  t.equal((await s1.ready)?.version, 41, 'started from the cache')
  t.equal(errors[0]!.code, errorCodes.SOURCE)
  t.match(errors[0]!.message, /ECONNREFUSED/)

  const empty: RuleSource = { name: 'empty', read: () => Promise.resolve(undefined), watch: () => () => {} }
  const s2 = createRuleStore({ source: empty, cacheFile })
  t.teardown(() => s2.close())
  t.equal((await s2.ready)?.version, 41, 'a missing document also falls back to the cache')

  const s3 = createRuleStore({ source: staticSource(doc(42)), cacheFile })
  t.teardown(() => s3.close())
  t.equal((await s3.ready)?.version, 42, 'the source wins when it answers')
  await s3.close()
  t.equal(JSON.parse(await readFile(cacheFile, 'utf8')).version, 42, 'and refreshes the cache')

  await writeFile(cacheFile, 'garbage')
  const cacheErrs: RulesError[] = []
  const s4 = createRuleStore({ source: down, cacheFile, onError: (e) => cacheErrs.push(e) })
  t.teardown(() => s4.close())
  t.equal(await s4.ready, undefined, 'a bad cache is refused too')
  t.ok(cacheErrs.some((e) => e.code === errorCodes.INVALID && /cache file/.test(e.message)))

  await rm(cacheFile)
  const s5 = createRuleStore({ source: down, cacheFile: join(dir, 'missing', 'nested', 'cache.json') })
  t.teardown(() => s5.close())
  t.equal(await s5.ready, undefined, 'no source, no cache: nothing in force, no crash')

  const errs6: RulesError[] = []
  const s6 = createRuleStore({ source: staticSource(doc(1)), cacheFile: join(dir, 'no-such-dir', 'c.json'), onError: (e) => errs6.push(e) })
  await s6.ready
  await s6.close()
  t.ok(errs6.some((e) => e.code === errorCodes.CACHE), 'an unwritable cache file is reported, rules still served')
  t.equal(s6.version, 1)
})

t.test('nacos source wiring (in-memory fake of the config client)', async (t) => {
  const configs = new Map<string, string>()
  const listeners = new Map<string, Set<(c: string | undefined) => void>>()
  const calls: string[] = []
  const fake: NacosConfigLike = {
    async get (dataId, group) { calls.push(`get ${group}/${dataId}`); return configs.get(`${group}/${dataId}`) },
    listen (dataId, group, cb) {
      calls.push(`listen ${group}/${dataId}`)
      const k = `${group}/${dataId}`
      if (!listeners.has(k)) listeners.set(k, new Set())
      listeners.get(k)!.add(cb)
      return () => { listeners.get(k)!.delete(cb) }
    }
  }
  const publish = (k: string, c: string | undefined) => { if (c === undefined) configs.delete(k); else configs.set(k, c); for (const l of listeners.get(k) ?? []) l(c) }
  configs.set('flowtag/rules.json', doc(1))
  const source = nacosSource({ config: fake, dataId: 'rules.json', group: 'flowtag' })
  t.equal(source.name, 'nacos flowtag/rules.json')
  const store = createRuleStore({ source })
  await store.ready
  t.equal(store.version, 1)
  t.same(calls, ['listen flowtag/rules.json', 'get flowtag/rules.json'], 'listens first, then reads: no update can slip between')
  publish('flowtag/rules.json', doc(2))
  t.equal(store.version, 2)
  publish('DEFAULT_GROUP/rules.json', doc(3))
  t.equal(store.version, 2, 'other groups are not ours')
  await store.close()
  t.equal(listeners.get('flowtag/rules.json')!.size, 0, 'close unlistens')
  const def = nacosSource({ config: fake, dataId: 'd' })
  t.equal(def.name, 'nacos DEFAULT_GROUP/d', 'group defaults to DEFAULT_GROUP')
  const failing = nacosSource({ config: { get: async () => { throw new Error('503') }, listen: () => { throw new Error('no') } }, dataId: 'd' })
  await t.rejects(failing.read(), { code: errorCodes.SOURCE, message: /503/ })
  const errs: Error[] = []
  failing.watch(() => {}, (e) => errs.push(e))
  t.match(errs[0], { code: errorCodes.SOURCE, message: /listen failed/ })
})

t.test('a watch update that lands before the initial read wins over it', async (t) => {
  let push: (raw: string) => void = () => {}
  let resolveRead: (raw: string) => void = () => {}
  const src: RuleSource = {
    name: 'racy',
    read: () => new Promise((resolve) => { resolveRead = resolve }),
    watch: (on) => { push = on; return () => {} }
  }
  const store = createRuleStore({ source: src })
  t.teardown(() => store.close())
  push(doc(2))
  resolveRead(doc(1))
  await store.ready
  t.equal(store.version, 2)
})

t.test('a source that hangs at start: the cache is used after startTimeoutMs, the late answer still wins', async (t) => {
  const dir = t.testdir({ 'cache.json': doc(7) })
  let answer: (raw: string) => void = () => {}
  const slow: RuleSource = { name: 'slow', read: () => new Promise((resolve) => { answer = resolve }), watch: () => () => {} }
  const errors: RulesError[] = []
  const store = createRuleStore({ source: slow, cacheFile: join(dir, 'cache.json'), startTimeoutMs: 30, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  t.equal((await store.ready)?.version, 7, 'started from the cache')
  t.match(errors[0], { code: errorCodes.SOURCE, message: /no answer within 30 ms/ })
  answer(doc(8))
  await waitFor('late answer', () => store.version === 8)
  t.throws(() => createRuleStore({ source: slow, startTimeoutMs: 0 }), { code: errorCodes.BAD_OPTION, message: /startTimeoutMs/ })
})

t.test('closing while the source hangs at start ends the wait at once', async (t) => {
  const hung: RuleSource = { name: 'hung', read: () => new Promise(() => {}), watch: () => () => {} }
  const store = createRuleStore({ source: hung, startTimeoutMs: 600000 })
  await store.close()
  t.equal(await store.ready, undefined)
})

t.test('file source: a file that appears after start is picked up', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'later.json')
  const errors: RulesError[] = []
  const store = createRuleStore({ source: fileSource(file, { debounceMs: 10 }), onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  t.equal(await store.ready, undefined)
  t.match(errors[0], { code: errorCodes.SOURCE, message: /no rule document; every request stays in its stable lane/ })
  await writeFile(file, doc(3))
  await waitFor('created file', () => store.version === 3)
  await rm(file)
  await waitFor('deletion reported', () => errors.length === 2)
  t.equal(store.version, 3, 'deleting the file keeps the last good set')
})

t.test('no document yet is logged as one line of facts, not an error with a stack; a failure underneath keeps its error', async (t) => {
  const logged: Array<{ obj: Record<string, unknown>, msg: string }> = []
  const logger = { warn: (obj: Record<string, unknown>, msg: string) => { logged.push({ obj, msg }) }, info: () => {} }
  const none = createRuleStore({ source: { name: 'empty', read: async () => undefined, watch: () => () => {} }, logger })
  t.teardown(() => none.close())
  await none.ready
  t.match(logged[0], { obj: { code: errorCodes.SOURCE }, msg: /no rule document/ })
  t.notOk('err' in logged[0]!.obj, 'no error object, so no stack')
  logged.length = 0
  const failing = createRuleStore({ source: { name: 'down', read: async () => { throw new Error('connection refused') }, watch: () => () => {} }, logger })
  t.teardown(() => failing.close())
  await failing.ready
  t.match(logged[0], { obj: { code: errorCodes.SOURCE }, msg: /connection refused/ })
  t.ok(logged[0]!.obj.err instanceof Error, 'the error, with its cause, for a failure underneath')
})

t.test('a source that throws synchronously does not reject ready', async (t) => {
  const broken: RuleSource = {
    name: 'broken',
    read: () => { throw new Error('sync read failure') },
    watch: () => { throw new Error('sync watch failure') }
  }
  const errors: RulesError[] = []
  const store = createRuleStore({ source: broken, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  t.equal(await store.ready, undefined)
  t.same(errors.map((e) => e.message), ['broken: sync watch failure', 'broken: sync read failure'])
  t.equal(store.stats.sourceErrors, 2)
})

t.test('serviceLanes: the lanes of the set in force, for the lanes option of outbound and grpc', async (t) => {
  const source = staticSource(undefined)
  const store = createRuleStore({ source })
  t.teardown(() => store.close())
  await store.ready
  t.equal(store.serviceLanes('order-service'), undefined, 'no set yet')
  source.set(doc(1))
  t.same(store.serviceLanes('order-service'), { stable: 'v1', candidates: ['v2'], strict: false })
  t.equal(store.serviceLanes('user-service'), undefined, 'a service the set does not name')
  source.set(doc(2).replace('"stable":"v1","candidates":["v2"]', '"stable":"v3","candidates":[]'))
  t.same(store.serviceLanes('order-service'), { stable: 'v3', candidates: [], strict: false }, 'follows the swap')
})
