import t from 'tap'
import { readEnv } from '../src/index.ts'

t.test('defaults apply and numbers are coerced', async (t) => {
  const env = readEnv({ NACOS_SERVER_ADDR: '127.0.0.1:8848', PORT: '8080' })
  t.match(env, { NACOS_SERVER_ADDR: '127.0.0.1:8848', PORT: 8080, HOST: '127.0.0.1', SERVICE_VERSION: 'v1', DRAIN_MS: 1000, RULES_GROUP: 'FLOWTAG', CRASH_EVERY: 0 })
})

t.test('a bad environment is refused with a coded error naming each variable', async (t) => {
  t.throws(() => readEnv({}), { code: 'FLOWTAG_DEMO_BAD_ENV', message: /NACOS_SERVER_ADDR/ })
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', PORT: 'http' }), { message: /PORT/ })
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', SERVICE_VERSION: 'v 2' }), { message: /SERVICE_VERSION: a lane name/ })
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', LOG_LEVEL: 'loud', DRAIN_MS: '-1' }), { message: /LOG_LEVEL.*DRAIN_MS|DRAIN_MS.*LOG_LEVEL/ })
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', CRASH_EVERY: '2.5' }), { message: /CRASH_EVERY/ })
})

t.test('the async hop\'s variables: off by default, checked when given', async (t) => {
  const env = readEnv({ NACOS_SERVER_ADDR: 'x:1' })
  t.match(env, { KAFKA_BROKERS: undefined, ORDER_EVENTS_TOPIC: 'order-created', KAFKA_GROUP: 'notification-service', KAFKA_SESSION_TIMEOUT_MS: 6000 })
  t.equal(readEnv({ NACOS_SERVER_ADDR: 'x:1', KAFKA_BROKERS: '127.0.0.1:29092,127.0.0.1:29093' }).KAFKA_BROKERS, '127.0.0.1:29092,127.0.0.1:29093')
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', KAFKA_BROKERS: 'a:1, b:2' }), { code: 'FLOWTAG_DEMO_BAD_ENV', message: /KAFKA_BROKERS/ })
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', ORDER_EVENTS_TOPIC: 'orders/created' }), { message: /ORDER_EVENTS_TOPIC/ })
  // Kafka refuses sessions shorter than its group.min.session.timeout.ms (6 s by default)
  t.throws(() => readEnv({ NACOS_SERVER_ADDR: 'x:1', KAFKA_SESSION_TIMEOUT_MS: '1000' }), { message: /KAFKA_SESSION_TIMEOUT_MS/ })
})
