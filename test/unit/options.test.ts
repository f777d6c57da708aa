import { describe, expect, it } from 'vitest';
import { definedOnly, withDefaults } from '../../src/core/options.js';

describe('options helpers', () => {
  it('withDefaults: a key set to undefined keeps its default; set keys win; defaults are not mutated', () => {
    const defaults = { dim: 256, charNgramMin: 3, normalize: true };
    const merged = withDefaults(defaults, { dim: undefined, charNgramMin: 2, normalize: false });
    expect(merged).toEqual({ dim: 256, charNgramMin: 2, normalize: false });
    expect(defaults).toEqual({ dim: 256, charNgramMin: 3, normalize: true });
    expect(withDefaults(defaults, undefined)).toEqual(defaults);
    expect(withDefaults(defaults, undefined)).not.toBe(defaults);
    // The trap it replaces: a spread lets undefined erase the default.
    expect({ ...defaults, ...{ dim: undefined } }.dim).toBeUndefined();
  });

  it('definedOnly: undefined values become absent keys; null, 0, false and empty strings stay', () => {
    const out = definedOnly({ a: undefined, b: null, c: 0, d: false, e: '', f: 'x' });
    expect(out).toEqual({ b: null, c: 0, d: false, e: '', f: 'x' });
    expect('a' in out).toBe(false);
  });
});
