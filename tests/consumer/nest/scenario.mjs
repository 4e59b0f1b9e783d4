// The Nest consumer scenario on the Node that runs this file (dist/main.js built by tsc): an
// edge on Express tags by rule and calls catalog by name; catalog v1 runs on Fastify, v2 on
// Express; the lane reaches the handler (@Lane()), a provider (LaneContext) and the wire. SIGTERM
// (enableShutdownHooks) deregisters before the process ends. gRPC: the edge's ClientGrpc
// (nacos:///inventory) reaches the Nest gRPC microservice of the request's lane (v1, v2); terminus:
// catalog's health controller reports the FlowTagHealthIndicator up.
import { fork } from 'node:child_process'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNacosDevServer } from '@flowtag/nacos-dev-server'
import { NacosClient } from '@flowtag/nacos'

const here = new URL('.', import.meta.url)
const nest = JSON.parse(await (await import('node:fs/promises')).readFile(new URL('node_modules/@nestjs/core/package.json', here), 'utf8')).version
const server = await startNacosDevServer({ port: 0 })
const children = []
function start (...args) {
  const child = fork(new URL('dist/main.js', here), args, { env: { ...process.env, NACOS_SERVER_ADDR: server.address }, stdio: 'inherit' })
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve({ child, port }))
    child.once('exit', (code) => reject(new Error(`main.js ${args.join(' ')} exited with ${code} before listening`)))
  })
}
async function waitFor (what, check, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

let failed = false
const admin = new NacosClient({ serverAddr: server.address, namingProtectEmpty: false })
try {
  const rules = { version: 1, services: { catalog: { stable: 'v1', candidates: ['v2'] }, inventory: { stable: 'v1', candidates: ['v2'] } }, default: 'v1', rules: [{ name: 'beta', when: { headers: { 'x-beta': { equals: 'yes' } } }, lane: 'v2' }] }
  await admin.config.publish('flowtag-rules.json', undefined, JSON.stringify(rules), 'json')
  const v1 = await start('catalog', 'fastify', 'v1')
  const v2 = await start('catalog', 'express', 'v2')
  await start('inventory', 'grpc', 'v1')
  await start('inventory', 'grpc', 'v2')
  const { port } = await start('edge', 'express')
  await waitFor('both catalog lanes in Nacos', async () => (await admin.naming.instances('catalog')).length === 2)
  await waitFor('both inventory lanes in Nacos', async () => (await admin.naming.instances('inventory')).length === 2)
  assert.deepEqual((await admin.naming.instances('inventory')).map((i) => i.metadata.protocol), ['grpc', 'grpc'])
  const call = async (headers) => {
    const res = await fetch(`http://127.0.0.1:${port}/call`, { headers })
    assert.equal(res.status, 200, await res.clone().text())
    return res.json()
  }
  let beta
  await waitFor('the edge to see both lanes', async () => (beta = await call({ 'x-beta': 'yes' })).upstream.servedBy === 'v2')
  assert.deepEqual(beta, { edgeLane: 'v2', rulesVersion: 1, upstream: { servedBy: 'v2', tag: 'v2', inProvider: 'v2', header: 'v2' } })
  assert.deepEqual((await call({})).upstream, { servedBy: 'v1', tag: 'v1', inProvider: 'v1', header: 'v1' })

  const stock = async (headers) => {
    const res = await fetch(`http://127.0.0.1:${port}/stock`, { headers })
    assert.equal(res.status, 200, await res.clone().text())
    return res.json()
  }
  let grpcBeta
  await waitFor('the edge\'s ClientGrpc to see both inventory lanes', async () => (grpcBeta = await stock({ 'x-beta': 'yes' })).upstream.servedBy === 'v2')
  assert.deepEqual(grpcBeta, { edgeLane: 'v2', upstream: { sku: 'a-1', servedBy: 'v2', lane: 'v2' } })
  assert.deepEqual(await stock({}), { edgeLane: 'v1', upstream: { sku: 'a-1', servedBy: 'v1', lane: 'v1' } })

  const health = await fetch(`http://127.0.0.1:${v2.port}/healthz`)
  assert.equal(health.status, 200)
  assert.deepEqual((await health.json()).info.flowtag, { status: 'up', service: 'catalog', version: 'v2', registered: true, draining: false })

  v1.child.kill('SIGTERM')
  await waitFor('catalog v1 deregistered on SIGTERM', async () => (await admin.naming.instances('catalog')).every((i) => i.metadata.version !== 'v1'))
  await waitFor('catalog v1 ended', () => v1.child.exitCode !== null || v1.child.signalCode !== null)
  console.log(`nest consumer scenario passed on Node ${process.version}, Nest ${nest}`)
} catch (err) {
  failed = true
  console.error(`nest consumer scenario FAILED on Node ${process.version}, Nest ${nest}:`, err)
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)))
  await admin.close()
  await server.close()
}
process.exit(failed ? 1 : 0)
