import { describe, expect, it } from 'vitest';
import { jumpHash, stableHash64 } from '../../../../src/backends/memcached/jump-hash.js';
import { JumpHashPlacement } from '../../../../src/backends/memcached/placement.js';

describe('jump consistent hash', () => {
  it('matches the published reference values', () => {
    expect(jumpHash(1n, 1)).toBe(0);
    expect(jumpHash(42n, 57)).toBe(43);
    expect(jumpHash(256n, 1024)).toBe(520);
    expect(jumpHash(0xdead10ccn, 1)).toBe(0);
    expect(jumpHash(0xdead10ccn, 666)).toBe(361);
    expect(jumpHash(0n, 60)).toBe(0);
    expect(jumpHash(1n, 60)).toBe(55);
    expect(jumpHash(2n, 60)).toBe(46);
  });

  it('moves only the keys of the new server when a server is appended', () => {
    let moved = 0;
    for (let i = 0; i < 3000; i++) {
      const h = stableHash64(`key-${i}`);
      const before = jumpHash(h, 4);
      const after = jumpHash(h, 5);
      if (after !== before) {
        expect(after).toBe(4);
        moved++;
      }
    }
    // About a fifth of the keys move to the fifth server.
    expect(moved).toBeGreaterThan(450);
    expect(moved).toBeLessThan(750);
  });

  it('uses a hash that is stable across runs', () => {
    expect(stableHash64('voldfs')).toBe(stableHash64('voldfs'));
    // SHA-256("abc") starts with ba7816bf8f01cfea.
    expect(stableHash64('abc')).toBe(0xba7816bf8f01cfean);
  });
});

describe('JumpHashPlacement', () => {
  it('spreads keys evenly over the servers', () => {
    const placement = new JumpHashPlacement(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[placement.domainOf(`vol:b:${i}`)]++;
    for (const count of counts) {
      expect(count).toBeGreaterThan(850);
      expect(count).toBeLessThan(1150);
    }
  });

  it('derives, for every server, a key with a short suffix that lands there', () => {
    for (const domains of [1, 2, 3, 7, 16]) {
      const placement = new JumpHashPlacement(domains);
      const base = 'vol:f:0123456789abcdef:0';
      const derived = new Set<string>();
      for (let d = 0; d < domains; d++) {
        const key = placement.keyInDomain(base, d);
        expect(key.startsWith(`${base}~`)).toBe(true);
        expect(key.length - base.length).toBeLessThanOrEqual(4);
        expect(placement.domainOf(key)).toBe(d);
        expect(placement.keyInDomain(base, d)).toBe(key);
        derived.add(key);
      }
      expect(derived.size).toBe(domains);
    }
  });

  it('rejects a domain outside the pool', () => {
    const placement = new JumpHashPlacement(3);
    expect(() => placement.keyInDomain('k', 3)).toThrow(RangeError);
    expect(() => placement.keyInDomain('k', -1)).toThrow(RangeError);
    expect(() => new JumpHashPlacement(0)).toThrow(RangeError);
  });
});
