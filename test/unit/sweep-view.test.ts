// What `livesim sweep` shows while it runs: a bar on a TTY, a line per finished trial otherwise,
// both with trials done of total, running, failed and the ETA.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { formatEta, SweepProgressView } from '../../sim-runtime/sweep/view.ts'

function stream(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = ''
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString()
      done()
    },
  }) as unknown as NodeJS.WriteStream & { isTTY: boolean; columns: number }
  w.isTTY = isTTY
  w.columns = 200
  return { out: w, text: () => text }
}

const progress = { total: 27, succeeded: 3, failed: 1, running: 2, reused: 0, etaSeconds: 65 }

describe('sweep progress', () => {
  it('formats the ETA in s, m and h', () => {
    expect([undefined, 4.4, 65, 3599, 7260].map(formatEta)).toEqual(['-', '4s', '1m05s', '59m59s', '2h01m'])
  })

  it('on a TTY: a bar with done/total, running, failed and the ETA', () => {
    const s = stream(true)
    const view = new SweepProgressView(s.out)
    view.update(progress)
    view.stop()
    expect(s.text()).toContain('4/27 trials | running 2 | failed 1 | reused 0 | ETA 1m05s')
  })

  it('off a TTY: a line each time a trial finishes, none in between', () => {
    const s = stream(false)
    const view = new SweepProgressView(s.out)
    view.update(progress)
    view.update({ ...progress, running: 1 })
    view.update({ ...progress, succeeded: 4, etaSeconds: undefined })
    expect(s.text().trim().split('\n')).toEqual([
      'livesim sweep: 4/27 trials done, 2 running, 1 failed, ETA 1m05s',
      'livesim sweep: 5/27 trials done, 2 running, 1 failed, ETA -',
    ])
  })
})
