// The dispatcher as undici users meet it: fetch(), request() through composed interceptors, and
// an Express app whose handlers call other services inside the request's flow.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { fetch, interceptors, request } from 'undici'
import { StaticDiscovery } from '@flowtag/nacos'
import { runWithFlow } from '@flowtag/context'
import { FlowTagDispatcher } from '../src/index.ts'
import { startInstance, type Instance } from './fixtures/instances.ts'

const at = (i: Instance, version: string) => ({ ip: '127.0.0.1', port: i.port, metadata: { version } })

t.test('fetch() and composed interceptors', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())

  const res = await runWithFlow({ tag: 'v2', baggage: {} }, () => fetch('http://user-service/users/1', { dispatcher }))
  t.equal(res.status, 200)
  t.match(await res.json(), { id: 'two', tag: 'v2', path: '/users/1', method: 'GET' })

  const posted = await fetch('http://user-service/users', { dispatcher, method: 'POST', body: JSON.stringify({ name: 'x' }) })
  t.match(await posted.json(), { id: 'one', method: 'POST', body: '{"name":"x"}' })

  await t.rejects(fetch('http://nobody/', { dispatcher }), { name: 'TypeError', cause: { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' } })

  // undici's own interceptors compose on top; responseError turns a 4xx/5xx into an error.
  const composed = dispatcher.compose(interceptors.responseError(), interceptors.dump({ maxSize: 1024 }))
  const r = await runWithFlow({ tag: 'v2', baggage: {} }, () => request('http://user-service/users/2', { dispatcher: composed }))
  t.equal(r.statusCode, 200)
})

t.test('an Express app calls the next service in the lane of its request', async (t) => {
  const [v1, v2] = await Promise.all([startInstance(t, 'one', 'v1'), startInstance(t, 'two', 'v2')])
  const discovery = new StaticDiscovery({ 'user-service': [at(v1, 'v1'), at(v2, 'v2')] })
  const dispatcher = new FlowTagDispatcher({ discovery, stableLane: 'v1' })
  t.teardown(() => dispatcher.close())

  const app = express()
  // Stand-in for @flowtag/context/express: enter the request's flow from its header.
  app.use((req, _res, next) => runWithFlow({ tag: req.get('x-flow-tag'), baggage: {} }, next))
  app.get('/orders/:id', async (req, res) => {
    try {
      const { body } = await request(`http://user-service/users/${req.params.id}`, { dispatcher })
      res.json({ user: await body.json() })
    } catch (err) {
      const e = err as { statusCode?: number; code?: string }
      res.status(e.statusCode ?? 500).json({ code: e.code })
    }
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const tagged = await (await fetch(`${base}/orders/7`, { headers: { 'x-flow-tag': 'v2' } })).json()
  t.match(tagged, { user: { id: 'two', tag: 'v2', path: '/users/7' } })
  const untagged = await (await fetch(`${base}/orders/8`)).json()
  t.match(untagged, { user: { id: 'one', tag: null } })

  discovery.set('user-service', [])
  const failed = await fetch(`${base}/orders/9`)
  t.equal(failed.status, 503)
  t.same(await failed.json(), { code: 'FLOWTAG_OUTBOUND_UNKNOWN_SERVICE' })
})
