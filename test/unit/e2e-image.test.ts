// The e2e tests' image parameters (test/e2e/image.ts): LIVESIM_E2E_IMAGE and LIVESIM_E2E_PULL_POLICY
// become the chart's image values, and the image reference the chart renders from them.
import { describe, expect, it } from 'vitest'
import { e2eImage } from '../e2e/image.ts'

const digest = `sha256:${'0123456789abcdef'.repeat(4)}`

describe('e2e image parameters', () => {
  it('default: livesim:dev, never pulled (the process-backed node runs no images)', () => {
    expect(e2eImage({})).toEqual({
      image: 'livesim:dev',
      repository: 'livesim',
      tag: 'dev',
      digest: undefined,
      pullPolicy: 'Never',
      helmSets: ['image.repository=livesim', 'image.pullPolicy=Never', 'image.tag=dev'],
    })
  })

  it('a named image is pulled IfNotPresent unless LIVESIM_E2E_PULL_POLICY says otherwise', () => {
    expect(e2eImage({ LIVESIM_E2E_IMAGE: 'ghcr.io/livesim/livesim:0.1.0' })).toMatchObject({ image: 'ghcr.io/livesim/livesim:0.1.0', repository: 'ghcr.io/livesim/livesim', tag: '0.1.0', pullPolicy: 'IfNotPresent' })
    expect(e2eImage({ LIVESIM_E2E_IMAGE: 'livesim:dev', LIVESIM_E2E_PULL_POLICY: 'Never' }).pullPolicy).toBe('Never')
    expect(e2eImage({ LIVESIM_E2E_PULL_POLICY: 'Always' }).pullPolicy).toBe('Always')
  })

  it('a registry with a port is part of the repository, not a tag', () => {
    const i = e2eImage({ LIVESIM_E2E_IMAGE: 'localhost:5000/livesim:e2e' })
    expect(i).toMatchObject({ repository: 'localhost:5000/livesim', tag: 'e2e', image: 'localhost:5000/livesim:e2e' })
    expect(() => e2eImage({ LIVESIM_E2E_IMAGE: 'localhost:5000/livesim' })).toThrow(/repository:tag/)
  })

  it('a digest is used instead of a tag, as the chart renders it', () => {
    const i = e2eImage({ LIVESIM_E2E_IMAGE: `registry.example/livesim:0.1.0@${digest}` })
    expect(i.image).toBe(`registry.example/livesim@${digest}`)
    expect(i.helmSets).toEqual(['image.repository=registry.example/livesim', 'image.pullPolicy=IfNotPresent', 'image.tag=0.1.0', `image.digest=${digest}`])
    const pinned = e2eImage({ LIVESIM_E2E_IMAGE: `registry.example/livesim@${digest}` })
    expect(pinned.image).toBe(`registry.example/livesim@${digest}`)
    expect(pinned.helmSets.filter((s) => s.startsWith('image.tag'))).toEqual([])
  })

  it('refuses what the chart would not render: no tag or digest, a bad digest, an unknown pull policy', () => {
    expect(() => e2eImage({ LIVESIM_E2E_IMAGE: 'livesim' })).toThrow(/LIVESIM_E2E_IMAGE=livesim: expected repository:tag/)
    expect(() => e2eImage({ LIVESIM_E2E_IMAGE: 'livesim@sha256:abc' })).toThrow(/digest must be sha256/)
    expect(() => e2eImage({ LIVESIM_E2E_PULL_POLICY: 'Sometimes' })).toThrow(/LIVESIM_E2E_PULL_POLICY=Sometimes: expected one of Always, IfNotPresent, Never/)
  })
})
