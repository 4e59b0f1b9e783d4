#!/usr/bin/env node
// user-service: the last hop. Runs as whichever version SERVICE_VERSION names (v1, v2, ...).
import { createService, main } from '@flowtag/demo-kit'

await main(async () => {
  const svc = await createService('user-service', 'service')
  const version = svc.env.SERVICE_VERSION
  svc.app.get<{ Params: { id: string } }>('/users/:id', async (request) => ({
    user: { id: request.params.id, name: `user ${request.params.id}` },
    hops: [{ service: 'user-service', version, lane: request.flow.tag ?? null }]
  }))
  return svc
})
