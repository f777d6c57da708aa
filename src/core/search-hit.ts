/** One search result, as every tier answers it. */
export interface SearchHit {
  id: string;
  /** Cosine similarity, inner product, or L2 (Euclidean) distance. */
  score: number;
  /** Version of the row that matched. */
  version: number;
}
