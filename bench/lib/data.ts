// Clustered data, like real embeddings: on uniform random vectors in 384 dimensions every
// neighbour is about as far as any other and no ANN index finds them (recall near 0).
const centroids = new Map<number, Float32Array[]>();

function gaussian(dim: number, sigma: number): Float32Array {
  const v = new Float32Array(dim);
  for (let j = 0; j < dim; j += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random())) * sigma;
    const t = 2 * Math.PI * Math.random();
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
