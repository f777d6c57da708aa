// The IVF kernel on the host's CPU: k-means training, list assignment, int8 encoding, and the
// batched search (centroid scores, probed lists' int8 scan, exact fp32 rescoring), plus the
// exact fp32 scan it is checked against. Plain C++ over caller-owned arrays; addon.cc binds it.
#pragma once
#include <cstdint>
#include <vector>

namespace hs {

// How rows are compared. kDot: larger q·x is nearer (cosine on unit vectors, inner product);
// kL2: the kernel score 2·q·x − ‖x‖² (larger is nearer, as the ONNX kernel ranks L2).
enum class Score : int { kDot = 0, kL2 = 1 };

// One Lloyd iteration of k-means on `n` rows: assigns each row to its nearest centroid and moves
// each centroid to the mean of its rows (unit length for kDot: spherical k-means). An empty list
// takes over half of the largest one (its centroid, nudged by `seed`). Returns the rows moved.
// Rows are compared with the centroids through int8 codes (`scale`, `offset`: the codes' range).
int64_t lloyd_step(const float* x, int64_t n, int dim, float* centroids, int nlist, Score score, uint64_t seed,
                   const float* scale, const float* offset, int threads, int32_t* labels);

// Nearest centroid of each row by `score`, compared through int8 codes: the centroids as u8
// codes of the range (`scale`, `offset`), each row as an s8 query (see quantize_query).
void assign(const float* x, int64_t n, int dim, const float* centroids, int nlist, Score score, const float* scale,
            const float* offset, int threads, int32_t* labels);

// A query in the codes' terms: q·x ≈ Σ q_d·offset_d + step · Σ out_d·code_d, with
// out_d = round(q_d·scale_d / step) in [−127, 127]; returns step. `out` has dpad bytes.
float quantize_query(const float* q, int dim, int dpad, const float* scale, int8_t* out);

// Centroids as u8 codes in blocks of 16 (one list), with the squared norms of what they decode to.
struct CentroidCodes {
  int nlist = 0;
  int dpad = 0;
  std::vector<uint8_t> codes;
  std::vector<float> norms;
};
CentroidCodes encode_centroids(const float* centroids, int nlist, int dim, const float* scale, const float* offset);

// Layout of the lists' int8 codes: list l holds entries [offsets[l], offsets[l+1]) in blocks
// [blocks[l], blocks[l+1]) of 16 rows × dpad bytes, 4 dimensions of a row together.
struct CodeLayout {
  int dim;
  int dpad;  // dim rounded up to a multiple of 4
  int nlist;
  const int32_t* offsets;
  const int32_t* blocks;
};

// u8 codes round((x − offset) / scale), clamped, written in `layout`'s blocks.
void encode(const float* x, const CodeLayout& layout, const float* scale, const float* offset, int threads,
            uint8_t* codes);

struct IvfView {
  CodeLayout layout;
  Score score;
  const CentroidCodes* centroids;
  const float* vectors;          // entries' fp32 rows, list order
  const float* norms;            // ‖x‖² per entry (kL2)
  const uint8_t* codes;
  const float* scale;
  const float* offset;
  const float* bias;  // per entry: 0, or −∞ for a tombstone
  int64_t entries;
};

struct SearchParams {
  int k;
  int nprobe;
  int candidates;      // rows rescored exactly per query (≥ k)
  const float* mask;   // optional per-entry 0 / −∞ (a filter)
  int threads;
};

// Top-k per query (scores exact, best first; −1 / −∞ past the rows found).
void ivf_search(const IvfView& ivf, const float* queries, int batch, const SearchParams& p, int32_t* rows,
                float* scores);

// Exact top-k over rows [0, n) of `x` (kernel scores), rows with a −∞ in bias or mask skipped.
void exact_search(const float* x, const float* norms, int64_t n, int dim, Score score, const float* bias,
                  const float* mask, const float* queries, int batch, int k, int threads, int32_t* rows,
                  float* scores);

// ‖x‖² per row.
void squared_norms(const float* x, int64_t n, int dim, float* out);

}  // namespace hs
