import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Ticker } from '../src/ticker.ts'

t.test('kick() runs at once, or right after the run in flight; never a second chain', async (t) => {
  let runs = 0
  let concurrent = 0
  let maxConcurrent = 0
  const ticker = new Ticker(async () => {
    runs++
    maxConcurrent = Math.max(maxConcurrent, ++concurrent)
    await sleep(50)
    concurrent--
    return 200
  })
  t.teardown(() => ticker.stop())
  ticker.schedule(10_000)
  ticker.kick()
  t.equal(runs, 1, 'kicked: ran at once instead of in 10 s')
  ticker.kick()
  ticker.kick()
  await sleep(80)
  t.equal(runs, 2, 'kicks during a run: one more run right after it')
  await sleep(500)
  t.ok(runs >= 3 && runs <= 5, `then back on the task's pace (${runs} runs)`)
  t.equal(maxConcurrent, 1, 'never two runs at once')
  ticker.stop()
  const stoppedAt = runs
  await ticker.idle()
  await sleep(300)
  t.ok(runs - stoppedAt <= 0, 'stop() ends the chain')
})

t.test('a task that rejects keeps its chain', async (t) => {
  let runs = 0
  const ticker = new Ticker(async () => {
    runs++
    if (runs === 1) return 20
    throw new Error('broken promise')
  })
  t.teardown(() => ticker.stop())
  ticker.kick()
  await sleep(150)
  t.ok(runs >= 3, `still running after a rejection (${runs} runs)`)
})
