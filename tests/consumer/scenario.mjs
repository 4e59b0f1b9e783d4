// Runs the consumer scenario on the Node that runs this file; exits non-zero on any mismatch.
import { fork } from 'node:child_process'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient } from '@flowtag/nacos'
import { parseRuleSet } from '@flowtag/rules'
import { FlowTagError, FlowtagError } from '@flowtag/errors'
import { fallbackOf } from '@flowtag/context/internals'
import { fallbackOf as rootFallbackOf } from '@flowtag/context'
import { runWithFlow } from '@flowtag/context'
import { laneHeaders } from '@flowtag/mq'
import { laneProducer } from '@flowtag/mq/kafkajs'
import { laneChannel } from '@flowtag/mq/amqplib'
import { createShadowComparer } from '@flowtag/shadow'

const server = await startNacosDevServer({ port: 0 })
const env = { ...process.env, NACOS_SERVER_ADDR: server.address }
const children = []
function start (file, extra = {}) {
  const child = fork(file, { env: { ...env, ...extra }, stdio: 'inherit' })
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code} before listening`)))
  })
}
async function waitFor (what, check, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch { /* not yet: try again */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

let failed = false
const admin = new NacosClient({ serverAddr: server.address })
try {
  const rules = {
    version: 1,
    services: { catalog: { stable: 'v1', candidates: ['v2'] } },
    default: 'v1',
    rules: [{ name: 'beta', when: { headers: { 'x-beta': { equals: 'yes' } } }, lane: 'v2' }]
  }
  parseRuleSet(JSON.stringify(rules), 'consumer')
  await admin.config.publish('flowtag-rules.json', undefined, JSON.stringify(rules), 'json')
  await start('express-service.mjs', { LANE: 'v1' })
  await start('express-service.mjs', { LANE: 'v2' })
  const { port } = await start('fastify-edge.mjs')
  await waitFor('both catalog lanes in Nacos', async () => (await admin.naming.instances('catalog')).length === 2)

  const call = async (headers) => {
    const res = await fetch(`http://127.0.0.1:${port}/call`, { headers })
    assert.equal(res.status, 200, await res.clone().text())
    return res.json()
  }
  let beta
  await waitFor('the edge to see both lanes', async () => (beta = await call({ 'x-beta': 'yes' })).upstream.servedBy === 'v2')
  assert.deepEqual(beta, { edgeLane: 'v2', upstream: { servedBy: 'v2', tag: 'v2', header: 'v2' } })
  const plain = await call({})
  assert.equal(plain.upstream.servedBy, 'v1')

  // Message lanes: a producer and a channel stamp the flow's lane, from the tarball's dist.
  const sent = []
  const producer = laneProducer({ send: async (r) => sent.push(r), sendBatch: async (b) => sent.push(b), transaction: async () => ({}) })
  await runWithFlow({ tag: 'v2', baggage: {} }, () => producer.send({ topic: 'orders', messages: [{ value: 'x' }] }))
  assert.equal(sent[0].messages[0].headers['x-flow-tag'], 'v2')
  const published = []
  const channel = laneChannel({ publish: (...a) => published.push(a), sendToQueue: (...a) => published.push(a) })
  runWithFlow({ tag: 'v2', baggage: {} }, () => channel.publish('orders', 'k', Buffer.from('x'), {}))
  assert.equal(published[0][3].headers['flowtag-lane'], 'v2')
  assert.deepEqual(laneHeaders({}, undefined), {})

  // A shadow pair compared from the tarball: the changed field is found by its path.
  const shadow = createShadowComparer({ learn: false })
  const answer = (tier) => ({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ id: 1, tier })), truncated: false })
  shadow.compare({ service: 'catalog', route: '/items/:id', method: 'GET', lane: 'v2', primaryLane: 'v1', primary: answer('gold'), mirror: answer('silver') })
  assert.deepEqual(shadow.report().routes[0].fields, [{ field: '/tier', count: 1 }])
  assert.throws(() => createShadowComparer({ maxBodyBytes: 0 }), (err) => err instanceof FlowtagError && err.code === 'FLOWTAG_SHADOW_BAD_OPTION')

  // Errors are coded and branded across the packages' public exports.
  assert.throws(() => new NacosClient({ serverAddr: 'not a host:port:1' }), (err) => err instanceof FlowtagError && err.code === 'FLOWTAG_NACOS_BAD_OPTION')
  // One casing: the old name is the same class; a moved name is the same function at the root (deprecated) and at internals.
  assert.equal(FlowtagError, FlowTagError)
  assert.throws(() => new NacosClient({ serverAddr: 'not a host:port:1' }), (err) => err instanceof FlowTagError)
  assert.equal(rootFallbackOf, fallbackOf)
  console.log(`consumer scenario passed on Node ${process.version}: lane v2 kept edge (Fastify) -> catalog (Express) by service name`)
} catch (err) {
  failed = true
  console.error(`consumer scenario FAILED on Node ${process.version}:`, err)
} finally {
  for (const child of children) child.kill('SIGTERM')
  await Promise.all(children.map((c) => c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined))
  await admin.close()
  await server.close()
}
process.exit(failed ? 1 : 0)
