#include "kernels.h"

#include <immintrin.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace hs {
namespace {

// ---- portable ------------------------------------------------------------------------------

void block_u8s8_generic(const uint8_t* block, const int8_t* queries, int nq, int dpad, int32_t* out,
                        const uint8_t* /*prefetch*/) {
  for (int q = 0; q < nq; q++) {
    const int8_t* qv = queries + static_cast<size_t>(q) * dpad;
    int32_t acc[kBlock] = {0};
    for (int g = 0; g < dpad / 4; g++) {
      const uint8_t* b = block + static_cast<size_t>(g) * 64;
      const int8_t* w = qv + g * 4;
      for (int r = 0; r < kBlock; r++) {
        acc[r] += b[r * 4] * w[0] + b[r * 4 + 1] * w[1] + b[r * 4 + 2] * w[2] + b[r * 4 + 3] * w[3];
      }
    }
    std::memcpy(out + q * kBlock, acc, sizeof acc);
  }
}

float dot_f32_generic(const float* a, const float* b, int dim) {
  // Eight partial sums, so the compiler can vectorise without reassociating.
  float s[8] = {0};
  int d = 0;
  for (; d + 8 <= dim; d += 8)
    for (int j = 0; j < 8; j++) s[j] += a[d + j] * b[d + j];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; d < dim; d++) t += a[d] * b[d];
  return t;
}

void dot_f32_4xn_generic(const float* a, int na, const float* b, int nb, int dim, float* out) {
  for (int i = 0; i < na; i++)
    for (int j = 0; j < nb; j++)
      out[i * nb + j] = dot_f32_generic(a + static_cast<size_t>(i) * dim, b + static_cast<size_t>(j) * dim, dim);
}

// ---- AVX-512 -------------------------------------------------------------------------------

#define HS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

// NQ queries against one block: each 64-byte load of codes meets NQ broadcast query words, and
// two accumulators per query (even and odd groups) hide VPDPBUSD's latency.
template <int NQ>
HS_AVX512 void tile_u8s8(const uint8_t* block, const int8_t* queries, int dpad, int32_t* out, const uint8_t* prefetch) {
  __m512i acc[NQ][2];
  for (int q = 0; q < NQ; q++) acc[q][0] = acc[q][1] = _mm512_setzero_si512();
  const int groups = dpad / 4;
  int32_t word;
  int g = 0;
  for (; g + 2 <= groups; g += 2) {
    const __m512i x0 = _mm512_loadu_si512(block + static_cast<size_t>(g) * 64);
    const __m512i x1 = _mm512_loadu_si512(block + static_cast<size_t>(g + 1) * 64);
    if (prefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + static_cast<size_t>(g) * 64), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + static_cast<size_t>(g + 1) * 64), _MM_HINT_T0);
    }
    for (int q = 0; q < NQ; q++) {
      const int8_t* w = queries + static_cast<size_t>(q) * dpad + g * 4;
      std::memcpy(&word, w, 4);
      acc[q][0] = _mm512_dpbusd_epi32(acc[q][0], x0, _mm512_set1_epi32(word));
      std::memcpy(&word, w + 4, 4);
      acc[q][1] = _mm512_dpbusd_epi32(acc[q][1], x1, _mm512_set1_epi32(word));
    }
  }
  if (g < groups) {
    const __m512i x0 = _mm512_loadu_si512(block + static_cast<size_t>(g) * 64);
    for (int q = 0; q < NQ; q++) {
      std::memcpy(&word, queries + static_cast<size_t>(q) * dpad + g * 4, 4);
      acc[q][0] = _mm512_dpbusd_epi32(acc[q][0], x0, _mm512_set1_epi32(word));
    }
  }
  for (int q = 0; q < NQ; q++) _mm512_storeu_si512(out + q * kBlock, _mm512_add_epi32(acc[q][0], acc[q][1]));
}

HS_AVX512 void block_u8s8_avx512(const uint8_t* block, const int8_t* queries, int nq, int dpad, int32_t* out,
                                 const uint8_t* prefetch) {
  switch (nq) {
    case 4:
      return tile_u8s8<4>(block, queries, dpad, out, prefetch);
    case 3:
      return tile_u8s8<3>(block, queries, dpad, out, prefetch);
    case 2:
      return tile_u8s8<2>(block, queries, dpad, out, prefetch);
    default:
      return tile_u8s8<1>(block, queries, dpad, out, prefetch);
  }
}

HS_AVX512 float dot_f32_avx512(const float* a, const float* b, int dim) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0;
  int d = 0;
  for (; d + 32 <= dim; d += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d), _mm512_loadu_ps(b + d), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d + 16), _mm512_loadu_ps(b + d + 16), s1);
  }
  for (; d + 16 <= dim; d += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + d), _mm512_loadu_ps(b + d), s0);
  if (d < dim) {
    const __mmask16 m = static_cast<__mmask16>((1u << (dim - d)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d), _mm512_maskz_loadu_ps(m, b + d), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

HS_AVX512 void dot_f32_4xn_avx512(const float* a, int na, const float* b, int nb, int dim, float* out) {
  // A 4×4 tile of accumulators: each loaded chunk of a row of `a` meets four rows of `b`.
  __m512 acc[4][4];
  for (auto& row : acc)
    for (auto& x : row) x = _mm512_setzero_ps();
  const int full = dim & ~15;
  const __mmask16 tail = static_cast<__mmask16>((1u << (dim - full)) - 1);
  for (int d = 0; d <= full; d += 16) {
    const bool last = d == full;
    if (last && tail == 0) break;
    __m512 bv[4];
    for (int j = 0; j < 4; j++) {
      const float* p = b + static_cast<size_t>(j < nb ? j : 0) * dim + d;
      bv[j] = last ? _mm512_maskz_loadu_ps(tail, p) : _mm512_loadu_ps(p);
    }
    for (int i = 0; i < 4; i++) {
      const float* p = a + static_cast<size_t>(i < na ? i : 0) * dim + d;
      const __m512 av = last ? _mm512_maskz_loadu_ps(tail, p) : _mm512_loadu_ps(p);
      for (int j = 0; j < 4; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < na; i++)
    for (int j = 0; j < nb; j++) out[i * nb + j] = _mm512_reduce_add_ps(acc[i][j]);
}

const Kernels kGeneric{"generic", block_u8s8_generic, dot_f32_generic, dot_f32_4xn_generic};
const Kernels kAvx512{"avx512-vnni", block_u8s8_avx512, dot_f32_avx512, dot_f32_4xn_avx512};

const Kernels& best() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return kAvx512;
  return kGeneric;
}

std::atomic<const Kernels*>& current() {
  static std::atomic<const Kernels*> k{[] {
    const char* forced = std::getenv("HYPERSYNC_NATIVE_ISA");
    return forced && std::strcmp(forced, "generic") == 0 ? &kGeneric : &best();
  }()};
  return k;
}

}  // namespace

const Kernels& kernels() { return *current().load(std::memory_order_relaxed); }

bool use_isa(const char* name) {
  if (std::strcmp(name, "generic") == 0) {
    current().store(&kGeneric);
    return true;
  }
  if (std::strcmp(name, "best") == 0) {
    current().store(&best());
    return true;
  }
  return false;
}

}  // namespace hs
