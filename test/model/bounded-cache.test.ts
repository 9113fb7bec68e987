import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { BoundedCache } from '../../src/model/bounded-cache.ts'

const cache = (entriesMax: number, bytesMax: number): BoundedCache<string, string> =>
  new BoundedCache<string, string>({ entriesMax, bytesMax, sizeOf: v => v.length })

describe('BoundedCache', () => {
  test('holds entriesMax entries; one more evicts the least recently used', () => {
    const c = cache(2, 100)
    c.set('a', 'x')
    c.set('b', 'x')
    assert.equal(c.get('a'), 'x') // a is now the most recent
    c.set('c', 'x')
    assert.equal(c.size, 2)
    assert.equal(c.get('b'), undefined)
    assert.equal(c.get('a'), 'x')
    assert.equal(c.get('c'), 'x')
  })

  test('holds bytesMax bytes; one byte more evicts until it fits', () => {
    const c = cache(10, 10)
    c.set('a', '12345')
    c.set('b', '12345')
    assert.equal(c.bytes, 10)
    c.set('c', '1')
    assert.equal(c.get('a'), undefined)
    assert.equal(c.bytes, 6)
  })

  test('an entry larger than bytesMax is not kept; replacing a key keeps the byte count right', () => {
    const c = cache(10, 10)
    c.set('big', '12345678901')
    assert.equal(c.get('big'), undefined)
    assert.equal(c.bytes, 0)
    c.set('a', '123')
    c.set('a', '1234567')
    assert.equal(c.bytes, 7)
    assert.equal(c.delete('a'), true)
    assert.equal(c.bytes, 0)
    assert.equal(c.delete('a'), false)
  })

  test('refuses nonsense bounds', () => {
    assert.throws(() => cache(0, 10))
    assert.throws(() => cache(1, 0))
  })
})
