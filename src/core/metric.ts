/** Similarity metric of a collection. Scores: cosine similarity, inner product, or L2 distance. */
export type Metric = 'cosine' | 'ip' | 'l2';

/** The metrics hypersync accepts, in one place for validators. */
export const METRICS: readonly Metric[] = ['cosine', 'ip', 'l2'];
