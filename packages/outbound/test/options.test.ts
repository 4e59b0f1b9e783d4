import t from 'tap'
import { StaticDiscovery } from '@flowtag/nacos'
import { FlowTagDispatcher } from '../src/index.ts'

const discovery = new StaticDiscovery()

t.test('bad options are refused with a coded error naming the field', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{}, 'discovery'],
    [{ discovery: {} }, 'discovery'],
    [{ discovery, maxRetries: -1 }, 'maxRetries'],
    [{ discovery, staleRetry: 'yes' }, 'staleRetry'],
    [{ discovery, labelKey: '' }, 'labelKey'],
    [{ discovery, outlier: { consecutiveFailures: 0 } }, 'outlier.consecutiveFailures'],
    [{ discovery, outlier: { maxEjectionPercent: 101 } }, 'outlier.maxEjectionPercent'],
    [{ discovery, outlier: { baseEjectionMs: 1000, maxEjectionMs: 10 } }, 'outlier.maxEjectionMs'],
    [{ discovery, connectTimeout: 0 }, 'connectTimeout'],
    [{ discovery, lanes: 'v1' }, 'lanes'],
    [{ discovery, meter: {} }, 'meter'],
    [{ discovery, typo: true }, 'typo'],
    [{ discovery, outlier: { typo: 1 } }, 'outlier.typo'],
    [{ discovery, signTag: 'a-token' }, 'signTag'],
    [{ discovery, warmup: true }, 'warmup'],
    [{ discovery, warmup: { windowMs: 0 } }, 'warmup.windowMs'],
    [{ discovery, warmup: { minWeightPercent: 101 } }, 'warmup.minWeightPercent'],
    [{ discovery, warmup: { aggression: 0 } }, 'warmup.aggression'],
    [{ discovery, warmup: { window: 1000 } }, 'warmup.window'],
    [{ discovery, retryBudget: 0.2 }, 'retryBudget'],
    [{ discovery, retryBudget: { percent: -5 } }, 'retryBudget.percent'],
    [{ discovery, retryBudget: { intervalMs: 10 } }, 'retryBudget.intervalMs'],
    [{ discovery, retryBudget: { minRetriesPerSecond: -1 } }, 'retryBudget.minRetriesPerSecond'],
    [{ discovery, services: { svc: { warmup: { windowMs: -1 } } } }, 'services.svc.warmup.windowMs'],
    [{ discovery, services: { svc: { retryBudget: true } } }, 'services.svc.retryBudget'],
    [{ discovery, services: { svc: { outlier: {} } } }, 'services.svc.outlier'],
    [{ discovery, services: [] }, 'services']
  ]
  for (const [opts, field] of cases) {
    t.throws(
      () => new FlowTagDispatcher(opts as never),
      { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', name: 'OutboundError', message: new RegExp(`"${field.replaceAll('.', '\\.')}"`) },
      field
    )
  }
})

t.test('defaults are accepted', async (t) => {
  const d = new FlowTagDispatcher({ discovery })
  t.ok(d)
  await d.close()
})
