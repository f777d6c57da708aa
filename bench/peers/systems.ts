/**
 * The systems of the peers benchmark: what runs each one, or why it cannot run here. A system that
 * cannot be installed or run is reported in the table with its reason, never silently left out.
 */
import type { AnnData, AnnRow } from './common.js';
import { runChroma } from './chroma.js';
import { runHnswlib } from './hnswlib.js';
import { runHttp } from './http.js';
import { runHypersync } from './hypersync.js';
import { runPgvector } from './pgvector.js';
import { runUsearch } from './usearch.js';

export interface PeerSystem {
  key: string;
  label: string;
  run?: (data: AnnData) => Promise<AnnRow[]>;
  /** Why it is not run here (it is reported with this reason). */
  unavailable?: string;
  /** Rows above which it is skipped unless `BENCH_<KEY>=1` (too slow to build on this machine). */
  maxN?: number;
}

export const SYSTEMS: readonly PeerSystem[] = [
  { key: 'hypersync', label: 'hypersync in process', run: runHypersync },
  { key: 'http', label: 'hypersync HTTP', run: runHttp },
  { key: 'pgvector', label: 'pgvector', run: runPgvector },
  { key: 'hnswlib', label: 'hnswlib-node 3.0.0', run: runHnswlib },
  { key: 'usearch', label: 'usearch 2.26.2', run: runUsearch },
  { key: 'chroma', label: 'Chroma', run: runChroma, maxN: 200_000 },
  {
    key: 'qdrant',
    label: 'Qdrant',
    unavailable:
      'not run: its server is neither an npm nor a Debian package (it ships as a binary and a container image from elsewhere); @qdrant/js-client-rest is only a client',
  },
  {
    key: 'faiss',
    label: 'faiss-node 0.5.1',
    unavailable:
      'not run: its install downloads a prebuilt binary from GitHub, or clones FAISS from GitHub to build it; neither is reachable here',
  },
];
