// The device code of the top-k selection (topk.h), apart from its launches so that
// test/emulate.cc can run the same kernels on the CPU. Included by topk.cu only.
#pragma once

#include <cmath>
#include <cstddef>

#ifndef HS_DYNAMIC_SHARED
#define HS_DYNAMIC_SHARED(name) extern __shared__ unsigned char name[]
#endif

namespace hs {
namespace kernels {


constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

// Stage 1 input: a GEMM tile plus the per-row bias and mask.
struct TileSource {
  const float* scores;
  int cols;
  const float* bias;
  const float* mask;
  int rowBase;
  __device__ __forceinline__ float score(int q, int i) const {
    float v = __ldg(scores + static_cast<size_t>(q) * cols + i);
    if (bias) v += __ldg(bias + i);
    if (mask) v += __ldg(mask + i);
    return v;
  }
  __device__ __forceinline__ int row(int, int i) const { return rowBase + i; }
};

// Stage 2 input: the candidates stage 1 wrote.
struct CandidateSource {
  const float* scores;
  const int* rows;
  int len;
  __device__ __forceinline__ float score(int q, int i) const { return scores[static_cast<size_t>(q) * len + i]; }
  __device__ __forceinline__ int row(int q, int i) const { return rows[static_cast<size_t>(q) * len + i]; }
};

// Sorted insertion into a thread's list, fully unrolled so the list stays in registers.
template <int K>
__device__ __forceinline__ void insert(float (&v)[K], int (&r)[K], float x, int row) {
  v[K - 1] = x;
  r[K - 1] = row;
#pragma unroll
  for (int j = K - 1; j > 0; --j) {
    if (v[j] > v[j - 1]) {
      const float tv = v[j];
      v[j] = v[j - 1];
      v[j - 1] = tv;
      const int tr = r[j];
      r[j] = r[j - 1];
      r[j - 1] = tr;
    }
  }
}

// k ≤ K ≤ 32: each thread keeps its best K in registers while it streams its share of the
// slice, then k rounds of a block-wide arg-max pop the best heads.
template <int K, class Src>
__global__ void __launch_bounds__(kThreads)
    selectSmall(Src src, int len, int k, int sliceLen, float* outS, int* outR, int outStride, int outSlice) {
  const int q = blockIdx.y;
  const int begin = blockIdx.x * sliceLen;
  const int end = min(len, begin + sliceLen);
  float v[K];
  int r[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    v[j] = -INFINITY;
    r[j] = -1;
  }
  for (int i = begin + threadIdx.x; i < end; i += kThreads) {
    const float x = src.score(q, i);
    if (x > v[K - 1]) insert<K>(v, r, x, src.row(q, i));
  }
  __shared__ float warpBest[kWarps];
  __shared__ int warpWho[kWarps];
  __shared__ int winner;
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const size_t at = static_cast<size_t>(q) * outStride + static_cast<size_t>(outSlice + blockIdx.x) * k;
  for (int round = 0; round < k; ++round) {
    float best = v[0];
    int who = threadIdx.x;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      const float ob = __shfl_down_sync(kFull, best, off);
      const int ow = __shfl_down_sync(kFull, who, off);
      if (ob > best || (ob == best && ow < who)) {
        best = ob;
        who = ow;
      }
    }
    if (lane == 0) {
      warpBest[warp] = best;
      warpWho[warp] = who;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float b = warpBest[0];
      int w = warpWho[0];
      for (int i = 1; i < kWarps; ++i) {
        if (warpBest[i] > b || (warpBest[i] == b && warpWho[i] < w)) {
          b = warpBest[i];
          w = warpWho[i];
        }
      }
      winner = w;
    }
    __syncthreads();
    if (threadIdx.x == winner) {
      outS[at + round] = v[0];
      outR[at + round] = v[0] == -INFINITY ? -1 : r[0];
#pragma unroll
      for (int j = 0; j < K - 1; ++j) {
        v[j] = v[j + 1];
        r[j] = r[j + 1];
      }
      v[K - 1] = -INFINITY;
      r[K - 1] = -1;
    }
  }
}

// Sorts `n` (a power of two) keys descending in shared memory, ids alongside.
__device__ void bitonicDescending(float* keys, int* ids, int n) {
  for (int size = 2; size <= n; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      __syncthreads();
      for (int t = threadIdx.x; t < n / 2; t += kThreads) {
        const int pos = 2 * t - (t & (stride - 1));
        const int partner = pos + stride;
        const bool descending = (pos & size) == 0;
        const float a = keys[pos];
        const float b = keys[partner];
        if (descending ? a < b : a > b) {
          keys[pos] = b;
          keys[partner] = a;
          const int id = ids[pos];
          ids[pos] = ids[partner];
          ids[partner] = id;
        }
      }
    }
  }
  __syncthreads();
}

// 32 < k ≤ kp: the block's best kp live sorted in the first half of a shared buffer; scores
// above the current k-th best are appended to the second half, which is sorted in when it might
// not hold another pass of the block.
template <class Src>
__global__ void __launch_bounds__(kThreads)
    selectLarge(Src src, int len, int k, int kp, int sliceLen, float* outS, int* outR, int outStride, int outSlice) {
  HS_DYNAMIC_SHARED(shared);
  float* keys = reinterpret_cast<float*>(shared);
  int* ids = reinterpret_cast<int*>(keys + 2 * kp);
  __shared__ int count;
  __shared__ float threshold;
  const int q = blockIdx.y;
  const int begin = blockIdx.x * sliceLen;
  const int end = min(len, begin + sliceLen);
  for (int i = threadIdx.x; i < 2 * kp; i += kThreads) {
    keys[i] = -INFINITY;
    ids[i] = -1;
  }
  if (threadIdx.x == 0) {
    count = 0;
    threshold = -INFINITY;
  }
  __syncthreads();
  // Entries in the second half, the same in every thread: the flush is decided on this rather
  // than on `count`, which faster warps already raise in the same pass.
  int filled = 0;
  for (int base = begin; base < end; base += kThreads) {
    if (filled + kThreads > kp) {
      bitonicDescending(keys, ids, 2 * kp);
      for (int i = kp + threadIdx.x; i < 2 * kp; i += kThreads) {
        keys[i] = -INFINITY;
        ids[i] = -1;
      }
      if (threadIdx.x == 0) {
        count = 0;
        threshold = keys[k - 1];
      }
      filled = 0;
      __syncthreads();
    }
    const int i = base + threadIdx.x;
    int inserted = 0;
    if (i < end) {
      const float x = src.score(q, i);
      if (x > threshold) {
        const int p = atomicAdd(&count, 1);
        keys[kp + p] = x;
        ids[kp + p] = src.row(q, i);
        inserted = 1;
      }
    }
    filled += __syncthreads_count(inserted);
  }
  bitonicDescending(keys, ids, 2 * kp);
  const size_t at = static_cast<size_t>(q) * outStride + static_cast<size_t>(outSlice + blockIdx.x) * k;
  for (int j = threadIdx.x; j < k; j += kThreads) {
    outS[at + j] = keys[j];
    outR[at + j] = keys[j] == -INFINITY ? -1 : ids[j];
  }
}

}  // namespace kernels
}  // namespace hs
