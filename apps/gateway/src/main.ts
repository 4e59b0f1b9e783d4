#!/usr/bin/env node
// gateway: the edge. Decides each request's lane from the live RuleSet and routes it to
// order-service in that lane; the answer lists which version served each hop.
import { callJson, createService, main } from '@flowtag/demo-kit'

await main(async () => {
  const svc = await createService('gateway', 'edge')
  svc.app.get<{ Params: { id: string } }>('/api/orders/:id', async (request, reply) => {
    const user = request.headers['x-user-id']
    const query = typeof user === 'string' ? `?user=${encodeURIComponent(user)}` : ''
    const up = await callJson(svc.outbound, `http://order-service/orders/${encodeURIComponent(request.params.id)}${query}`)
    const body = up.body as { hops?: unknown[] }
    const decision = request.flow.decision
    const self = { service: 'gateway', version: svc.env.SERVICE_VERSION, lane: request.flow.tag ?? null, rule: decision?.rule ?? null, ruleVersion: svc.rules.version ?? null }
    return reply.code(up.status).send({ ...body, hops: [self, ...(body.hops ?? [])] })
  })
  return svc
})
