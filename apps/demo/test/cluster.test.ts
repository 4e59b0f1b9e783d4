import t from 'tap'
import { startApp } from '../src/cluster.ts'

t.test('an app that cannot start is reported with its reason, and not left running', async (t) => {
  const err = await startApp('user-service', 'v 2', { nacosAddr: '127.0.0.1:1' }).catch((e: Error) => e)
  t.type(err, Error)
  t.match((err as Error).message, /user-service@v 2 exited \(1\) before listening/)
  t.match((err as Error).message, /FLOWTAG_DEMO_BAD_ENV: bad environment: SERVICE_VERSION: a lane name/)
})

t.test('an unknown app is refused', async (t) => {
  await t.rejects(startApp('billing-service', 'v1', { nacosAddr: '127.0.0.1:1' }), { message: /unknown app billing-service/ })
})
