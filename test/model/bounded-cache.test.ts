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
    assert.throws(() => cache(0, 10), /assertion failed/)
    assert.throws(() => cache(1, 0), /assertion failed/)
    assert.throws(() => new BoundedCache<string, string>({ entriesMax: 1, bytesMax: 10 }), /assertion failed/)
    assert.throws(() => new BoundedCache<string, string>({ entriesMax: 1, sizeOf: v => v.length }), /assertion failed/)
  })

  test('evicts in least-recently-used order, and onEvict sees each evicted entry once, after it left', () => {
    const evicted: string[] = []
    const c: BoundedCache<string, string> = new BoundedCache<string, string>({
      entriesMax: 3,
      onEvict: (key, value) => {
        assert.equal(c.get(key), undefined)
        evicted.push(`${key}=${value}`)
      }
    })
    for (const key of ['a', 'b', 'c']) c.set(key, key)
    c.get('a') // order now b, c, a
    assert.deepEqual(evicted, [])
    c.set('d', 'd') // one past entriesMax
    c.set('e', 'e')
    assert.deepEqual(evicted, ['b=b', 'c=c'])
    assert.equal(c.size, 3)
    assert.equal(c.bytesMax, undefined)
    assert.equal(c.bytes, 0)
  })

  test('onEvict runs for entries dropped for bytes, too large to keep, or replaced; not for delete or clear', () => {
    const evicted: string[] = []
    const c = new BoundedCache<string, string>({ entriesMax: 10, bytesMax: 10, sizeOf: v => v.length, onEvict: (key, value) => evicted.push(`${key}=${value}`) })
    c.set('a', '12345')
    c.set('b', '12345')
    c.set('c', '1') // one byte past bytesMax
    assert.deepEqual(evicted, ['a=12345'])
    c.set('big', '12345678901')
    assert.deepEqual(evicted, ['a=12345', 'big=12345678901'])
    c.set('c', '2')
    assert.deepEqual(evicted, ['a=12345', 'big=12345678901', 'c=1'])
    const same = '3'
    c.set('d', same)
    c.set('d', same) // the same value again is not a replacement
    c.delete('b')
    c.clear()
    assert.deepEqual(evicted, ['a=12345', 'big=12345678901', 'c=1'])
    assert.equal(c.size, 0)
    assert.equal(c.bytes, 0)
  })
})
