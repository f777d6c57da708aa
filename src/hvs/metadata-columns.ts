import { type CompareOp, compareMatches, type FilterNode, type FilterScalar } from '../core/filter.js';
import type { Segment } from './segment.js';

type Metadata = Record<string, unknown>;
type ArrayValue = readonly FilterScalar[];

const INITIAL_SLOTS = 1024;

/**
 * One metadata field (a dotted path) across every slot, one typed array per JSON type so a filter
 * scans it without touching JS objects: numbers (NaN where absent), strings as dictionary codes
 * (−1 where absent), booleans (−1 where absent), arrays (sparse), and presence (any value).
 */
class Column {
  present: Uint8Array;
  num: Float64Array | undefined;
  str: Int32Array | undefined;
  bool: Int8Array | undefined;
  arr: Map<number, ArrayValue> | undefined;
  /** Slots whose value is null. */
  nulls: Set<number> | undefined;
  /** Slots whose value is a nested object (its fields are columns of their own). */
  objects: Set<number> | undefined;

  constructor(capacity: number) {
    this.present = new Uint8Array(capacity);
  }

  grow(capacity: number): void {
    const grow = <T extends Uint8Array | Float64Array | Int32Array | Int8Array>(a: T, fill: number): T => {
      const next = new (a.constructor as new (n: number) => T)(capacity);
      next.set(a);
      if (fill !== 0) next.fill(fill, a.length);
      return next;
    };
    this.present = grow(this.present, 0);
    if (this.num) this.num = grow(this.num, NaN);
    if (this.str) this.str = grow(this.str, -1);
    if (this.bool) this.bool = grow(this.bool, -1);
  }

  clear(slot: number): void {
    this.present[slot] = 0;
    if (this.num) this.num[slot] = NaN;
    if (this.str) this.str[slot] = -1;
    if (this.bool) this.bool[slot] = -1;
    this.arr?.delete(slot);
    this.nulls?.delete(slot);
    this.objects?.delete(slot);
  }

  bytes(): number {
    let b = this.present.byteLength + (this.num?.byteLength ?? 0) + (this.str?.byteLength ?? 0) + (this.bool?.byteLength ?? 0);
    for (const a of this.arr?.values() ?? []) b += 16 + a.length * 16;
    return b + ((this.nulls?.size ?? 0) + (this.objects?.size ?? 0)) * 16;
  }
}

/**
 * The metadata of a hot-tier collection as columns, per row key (a slot each), so that a filter
 * becomes a row mask for the search kernel in a few passes over typed arrays. Strings are
 * dictionary-encoded once per collection; a comparison runs over the dictionary, then over the
 * codes.
 */
export class MetadataColumns {
  private capacity = INITIAL_SLOTS;
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private nextSlot = 0;
  private editCount = 0;
  /** 1 for slots in use. */
  private live = new Uint8Array(INITIAL_SLOTS);
  private readonly columns = new Map<string, Column>();
  /** The columns each slot has a value in, so a slot clears in O(its fields). */
  private readonly fieldsOf: (Column[] | undefined)[] = [];
  private readonly dict = new Map<string, number>();
  private readonly strings: string[] = [];
  /** Per segment: the slot of each row, computed once for sealed segments and extended for growing ones. */
  private readonly rowSlots = new WeakMap<Segment, Int32Array>();
  private readonly rowSlotsDone = new WeakMap<Segment, number>();

  /** Keys with metadata. */
  get size(): number {
    return this.slots.size;
  }

  /** Sets and deletes so far: every row a collection writes or deletes passes here (its change count). */
  get edits(): number {
    return this.editCount;
  }

  /** Sets `key`'s metadata (replacing what it had); `{}` keeps a slot with no fields. */
  set(key: string, metadata: Metadata): void {
    this.editCount++;
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.nextSlot++;
      if (slot >= this.capacity) this.grow(Math.max(this.capacity * 2, slot + 1));
      this.slots.set(key, slot);
      this.live[slot] = 1;
    } else {
      this.clearSlot(slot);
    }
    const fields: Column[] = [];
    this.fieldsOf[slot] = fields;
    this.write(slot, metadata, '', fields);
  }

  /** The slot of `key`, or −1. */
  slotOf(key: string): number {
    return this.slots.get(key) ?? -1;
  }

  /** Forgets everything. */
  clear(): void {
    for (const key of [...this.slots.keys()]) this.delete(key);
  }

  /** Forgets `key`'s metadata; its slot is reused. */
  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.editCount++;
    this.clearSlot(slot);
    this.slots.delete(key);
    this.live[slot] = 0;
    this.free.push(slot);
  }

  /** The metadata of `key` rebuilt from the columns (snapshots), or undefined. */
  get(key: string): Metadata | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const out: Metadata = {};
    for (const col of this.fieldsOf[slot] ?? []) {
      const path = this.pathOf(col);
      let v: unknown;
      if (col.num && !Number.isNaN(col.num[slot])) v = col.num[slot];
      else if (col.str && col.str[slot] >= 0) v = this.strings[col.str[slot]];
      else if (col.bool && col.bool[slot] >= 0) v = col.bool[slot] === 1;
      else if (col.arr?.has(slot)) v = [...(col.arr.get(slot) as ArrayValue)];
      else if (col.nulls?.has(slot)) v = null;
      else if (col.objects?.has(slot)) v = {};
      else continue;
      setPath(out, path, v);
    }
    return out;
  }

  /** `[key, metadata]` for each of `keys` (`{}` for a key without any). */
  *entries(keys: Iterable<string>): Iterable<[string, Metadata]> {
    for (const key of keys) yield [key, this.get(key) ?? {}];
  }

  /** Rough bytes held. */
  bytes(): number {
    let b = this.live.byteLength + this.slots.size * 64 + this.strings.reduce((s, x) => s + 2 * x.length + 48, 0);
    for (const c of this.columns.values()) b += c.bytes();
    return b;
  }

  /**
   * Per slot, 1 where the filter matches (and the slot is in use), 0 elsewhere; slots are what
   * {@link slotsOf} gives a segment's rows.
   */
  evaluate(node: FilterNode): Uint8Array {
    const n = this.nextSlot;
    const out = new Uint8Array(n);
    switch (node.op) {
      case 'all':
        out.set(this.live.subarray(0, n));
        return out;
      case 'and':
      case 'or': {
        const parts = node.of.map((x) => this.evaluate(x));
        out.set(parts[0]);
        for (const p of parts.slice(1)) {
          if (node.op === 'and') for (let i = 0; i < n; i++) out[i] &= p[i];
          else for (let i = 0; i < n; i++) out[i] |= p[i];
        }
        return out;
      }
      case 'not': {
        const inner = this.evaluate(node.of);
        for (let i = 0; i < n; i++) out[i] = this.live[i] & (inner[i] ^ 1);
        return out;
      }
    }
    const col = this.columns.get(node.path.join('.'));
    if (!col) return out;
    switch (node.op) {
      case 'exists':
        out.set(col.present.subarray(0, n));
        return out;
      case 'eq':
        this.scanEquals(col, [node.value], out);
        return out;
      case 'in':
        this.scanEquals(col, node.values, out);
        return out;
      case 'contains': {
        const x = node.value;
        for (const [slot, arr] of col.arr ?? []) if (arr.includes(x)) out[slot] = 1;
        if (typeof x === 'string' && col.str)
          this.scanCodes(
            col.str,
            this.matchingCodes((s) => s.includes(x)),
            out,
          );
        return out;
      }
      default: {
        const { op, value } = node;
        if (typeof value === 'number') {
          // NaN marks a slot without a number: every comparison with it is false, as it must be.
          if (col.num) scanRange(col.num, op, value, out);
        } else if (col.str) {
          this.scanCodes(
            col.str,
            this.matchingCodes((s) => compareMatches(op, s, value)),
            out,
          );
        }
        return out;
      }
    }
  }

  /**
   * The slot of each row of `seg` (−1 for a row whose key has no metadata), computed once per
   * row: a sealed segment's ids never change, a growing segment only gains rows.
   */
  slotsOf(seg: Segment): Int32Array {
    let slots = this.rowSlots.get(seg);
    const done = this.rowSlotsDone.get(seg) ?? 0;
    if (slots && done === seg.rows) return slots;
    if (!slots || slots.length < seg.rows) {
      const next = new Int32Array(Math.max(seg.rows, Math.min(seg.rows * 2, 1 << 20)));
      if (slots) next.set(slots.subarray(0, done));
      slots = next;
      this.rowSlots.set(seg, slots);
    }
    for (let r = done; r < seg.rows; r++) slots[r] = this.slots.get(seg.ids[r]) ?? -1;
    this.rowSlotsDone.set(seg, seg.rows);
    return slots;
  }

  private scanEquals(col: Column, values: readonly FilterScalar[], out: Uint8Array): void {
    const n = out.length;
    const codes: number[] = [];
    for (const v of values) {
      if (typeof v === 'string') {
        const code = this.dict.get(v);
        if (code !== undefined) codes.push(code);
      } else if (typeof v === 'number') {
        const num = col.num;
        if (num) for (let i = 0; i < n; i++) if (num[i] === v) out[i] = 1;
      } else if (col.bool) {
        const b = v ? 1 : 0;
        const bool = col.bool;
        for (let i = 0; i < n; i++) if (bool[i] === b) out[i] = 1;
      }
    }
    if (codes.length > 0 && col.str) {
      const want = new Uint8Array(this.strings.length);
      for (const c of codes) want[c] = 1;
      this.scanCodes(col.str, want, out);
    }
  }

  /** Per dictionary code, 1 where `test` holds for its string. */
  private matchingCodes(test: (s: string) => boolean): Uint8Array {
    const want = new Uint8Array(this.strings.length);
    this.strings.forEach((s, i) => (want[i] = test(s) ? 1 : 0));
    return want;
  }

  private scanCodes(str: Int32Array, want: Uint8Array, out: Uint8Array): void {
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const c = str[i];
      if (c >= 0 && want[c] === 1) out[i] = 1;
    }
  }

  private write(slot: number, obj: Metadata, prefix: string, fields: Column[]): void {
    for (const [key, v] of Object.entries(obj)) {
      const path = prefix + key;
      const col = this.column(path);
      fields.push(col);
      col.present[slot] = 1;
      if (typeof v === 'number') (col.num ??= new Float64Array(this.capacity).fill(NaN))[slot] = v;
      else if (typeof v === 'string') (col.str ??= new Int32Array(this.capacity).fill(-1))[slot] = this.code(v);
      else if (typeof v === 'boolean') (col.bool ??= new Int8Array(this.capacity).fill(-1))[slot] = v ? 1 : 0;
      else if (Array.isArray(v)) (col.arr ??= new Map()).set(slot, Object.freeze([...(v as FilterScalar[])]));
      else if (v === null) (col.nulls ??= new Set()).add(slot);
      else if (typeof v === 'object') {
        (col.objects ??= new Set()).add(slot);
        this.write(slot, v as Metadata, `${path}.`, fields);
      }
    }
  }

  private column(path: string): Column {
    let col = this.columns.get(path);
    if (!col) {
      col = new Column(this.capacity);
      this.columns.set(path, col);
      this.paths.set(col, path.split('.'));
    }
    return col;
  }

  private readonly paths = new Map<Column, string[]>();

  private pathOf(col: Column): string[] {
    return this.paths.get(col) as string[];
  }

  private code(s: string): number {
    let c = this.dict.get(s);
    if (c === undefined) {
      c = this.strings.length;
      this.strings.push(s);
      this.dict.set(s, c);
    }
    return c;
  }

  private clearSlot(slot: number): void {
    for (const col of this.fieldsOf[slot] ?? []) col.clear(slot);
    this.fieldsOf[slot] = undefined;
  }

  private grow(capacity: number): void {
    const live = new Uint8Array(capacity);
    live.set(this.live);
    this.live = live;
    for (const c of this.columns.values()) c.grow(capacity);
    this.capacity = capacity;
  }
}

/** `out[i] = 1` where `num[i] op x` (one loop per operator: this is the hot path of range filters). */
function scanRange(num: Float64Array, op: CompareOp, x: number, out: Uint8Array): void {
  const n = out.length;
  if (op === 'gt') for (let i = 0; i < n; i++) out[i] = num[i] > x ? 1 : 0;
  else if (op === 'gte') for (let i = 0; i < n; i++) out[i] = num[i] >= x ? 1 : 0;
  else if (op === 'lt') for (let i = 0; i < n; i++) out[i] = num[i] < x ? 1 : 0;
  else for (let i = 0; i < n; i++) out[i] = num[i] <= x ? 1 : 0;
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setPath(out: Metadata, path: readonly string[], v: unknown): void {
  let o = out;
  for (let i = 0; i < path.length - 1; i++) {
    const next = o[path[i]];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) o[path[i]] = {};
    o = o[path[i]] as Metadata;
  }
  const last = path[path.length - 1];
  // An object's marker comes before its fields (write order), but never overwrites them.
  if (isObject(v) && isObject(o[last])) return;
  o[last] = v;
}
