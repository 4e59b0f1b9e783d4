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
    [{ discovery, signTag: 'a-token' }, 'signTag']
  ]
  for (const [opts, field] of cases) {
    t.throws(
      () => new FlowTagDispatcher(opts as never),
      { code: 'FLOWTAG_OUTBOUND_BAD_OPTION', name: 'OutboundError', message: new RegExp(`"${field.replace('.', '\\.')}"`) },
      field
    )
  }
})

t.test('defaults are accepted', async (t) => {
  const d = new FlowTagDispatcher({ discovery })
  t.ok(d)
  await d.close()
})
