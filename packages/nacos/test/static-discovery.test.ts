import t from 'tap'
import { StaticDiscovery, type ServiceChange } from '../src/index.ts'

t.test('StaticDiscovery fills in defaults, lists, and tells subscribers what changed', async (t) => {
  const d = new StaticDiscovery({ svc: [{ ip: '10.0.0.1', port: 80, metadata: { version: 'v1' } }] })
  const [one] = await d.instances('svc')
  t.same(one, {
    instanceId: '10.0.0.1#80#DEFAULT#DEFAULT_GROUP@@svc',
    ip: '10.0.0.1',
    port: 80,
    weight: 1,
    healthy: true,
    enabled: true,
    ephemeral: true,
    clusterName: 'DEFAULT',
    serviceName: 'svc',
    metadata: { version: 'v1' }
  })
  t.same(await d.instances('nobody'), [], 'an unknown service is empty')

  const changes: ServiceChange[] = []
  const off = d.subscribe('svc', (c) => changes.push(c))
  d.set('svc', [{ ip: '10.0.0.1', port: 80, weight: 5, metadata: { version: 'v1' } }, { ip: '10.0.0.2', port: 80, clusterName: 'C', instanceId: 'x', serviceName: 'G@@svc', healthy: false, enabled: false, ephemeral: false }])
  t.equal(changes.length, 1)
  t.equal(changes[0]!.added.length, 1)
  t.equal(changes[0]!.changed.length, 1, 'the weight change')
  t.match(changes[0]!.added[0], { instanceId: 'x', clusterName: 'C', healthy: false, enabled: false, ephemeral: false, serviceName: 'G@@svc' })
  d.set('other', [])
  t.equal(changes.length, 1, 'other services do not notify')
  off()
  d.set('svc', [])
  t.equal(changes.length, 1, 'unsubscribed')
  d.subscribe('svc', (c) => changes.push(c))
  await d.close()
  d.set('svc', [{ ip: '10.0.0.3', port: 80 }])
  t.equal(changes.length, 1, 'close drops the listeners')
})
