#!/usr/bin/env node
// order-service: runs as SERVICE_VERSION and calls user-service in the request's lane.
import { callJson, createService, main } from '@flowtag/demo-kit'

interface Upstream {
  user?: unknown
  hops?: unknown[]
}

await main(async () => {
  const svc = await createService('order-service', 'service')
  const version = svc.env.SERVICE_VERSION
  svc.app.get<{ Params: { id: string }; Querystring: { user?: string } }>('/orders/:id', async (request, reply) => {
    const userId = encodeURIComponent(request.query.user ?? 'anonymous')
    const up = await callJson(svc.outbound, `http://user-service/users/${userId}`)
    const body = up.body as Upstream
    const self = { service: 'order-service', version, lane: request.flow.tag ?? null }
    if (up.status !== 200) return reply.code(up.status).send({ ...body, hops: [self, ...(body.hops ?? [])] })
    return { order: { id: request.params.id, user: body.user }, hops: [self, ...(body.hops ?? [])] }
  })
  return svc
})
