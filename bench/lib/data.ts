// Clustered data, like real embeddings: on uniform random vectors in 384 dimensions every
// neighbour is about as far as any other and no ANN index finds them (recall near 0).
const centroids = new Map<number, Float32Array[]>();

function gaussian(dim: number, sigma: number, random: () => number = Math.random): Float32Array {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random())) * sigma;
    const t = 2 * Math.PI * random();
    v[j] = r * Math.cos(t);
    if (j + 1 < dim) v[j + 1] = r * Math.sin(t);
  }
  return v;
}

/** A vector near one of 200 fixed centroids (per dimension). */
export function clusteredVector(dim: number): Float32Array {
  let cs = centroids.get(dim);
  if (!cs) centroids.set(dim, (cs = Array.from({ length: 200 }, () => gaussian(dim, 1))));
  const c = cs[Math.floor(Math.random() * cs.length)];
  const v = gaussian(dim, 0.35);
  for (let j = 0; j < dim; j++) v[j] += c[j];
  return v;
}

/** A seeded pseudo-random generator (mulberry32) of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * `count` clustered vectors as one flat `count × dim` array, drawn like {@link clusteredVector}
 * (200 centroids, σ = 1; points σ = 0.35 around them) but deterministic: the centroids and the
 * points all come from `seed`. Take base and query vectors from one call so they share centroids.
 */
export function seededClusteredVectors(count: number, dim: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  const cs = Array.from({ length: 200 }, () => gaussian(dim, 1, random));
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const c = cs[Math.floor(random() * cs.length)];
    const v = gaussian(dim, 0.35, random);
    for (let j = 0; j < dim; j++) out[i * dim + j] = v[j] + c[j];
  }
  return out;
}
