// Inner loops of the IVF kernel: fp32 scores against blocks of 16 interleaved rows, u8×s8 scores
// against blocks of 16 interleaved int8 codes, and plain fp32 dot products. Each has a portable
// version and an AVX-512 (F, BW, VNNI) version chosen once at load time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hs {

// Rows per interleaved block: one AVX-512 register of fp32 or int32 lanes.
constexpr int kBlock = 16;
// Queries one block_u8s8 call scores at most.
constexpr int kTileQueries = 4;

struct Kernels {
  const char* isa;
  // Integer scores of up to kTileQueries s8 queries (each `dpad` bytes, one after another)
  // against one block of 16 rows of u8 codes, 4 dimensions of a row together:
  // out[q*16 + r] = Σ_g Σ_j block[g*64 + r*4 + j] · queries[q*dpad + g*4 + j].
  // `prefetch` (optional) names a block of the same size to bring into cache meanwhile.
  void (*block_u8s8)(const uint8_t* block, const int8_t* queries, int nq, int dpad, int32_t* out,
                     const uint8_t* prefetch);
  float (*dot_f32)(const float* a, const float* b, int dim);
  // out[i*nb + j] = dot(a_i, b_j) for i < 4 rows of a, j < nb ≤ 4 rows of b.
  void (*dot_f32_4xn)(const float* a, int na, const float* b, int nb, int dim, float* out);
};

// The kernels in use: the best this CPU runs, or the portable ones when
// `HYPERSYNC_NATIVE_ISA=generic` was set at load or `use_isa("generic")` was called.
const Kernels& kernels();
// Switches between the best kernels ("best") and the portable ones ("generic"); returns false
// for another name. Meant for tests and comparisons, between searches.
bool use_isa(const char* name);

}  // namespace hs
