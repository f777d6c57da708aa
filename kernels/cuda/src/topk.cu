#include <cmath>
#include <cstddef>

#include "topk.h"
#include "topk-kernels.cuh"

namespace hs {

namespace {

using namespace kernels;

template <int K, class Src>
void launchSmall(dim3 grid, cudaStream_t stream, const Src& src, int len, int k, int sliceLen, float* outS, int* outR,
                 int outStride, int outSlice) {
  selectSmall<K, Src><<<grid, kThreads, 0, stream>>>(src, len, k, sliceLen, outS, outR, outStride, outSlice);
}

template <class Src>
cudaError_t select(const Src& src, int len, int batch, int k, int sliceLen, float* outS, int* outR, int outStride,
                   int outSlice, cudaStream_t stream) {
  if (len <= 0 || batch <= 0 || k <= 0) return cudaSuccess;
  if (k > kMaxDeviceK || batch > 65535) return cudaErrorInvalidValue;
  const dim3 grid((len + sliceLen - 1) / sliceLen, batch);
  if (k <= 1) launchSmall<1>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else if (k <= 2) launchSmall<2>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else if (k <= 4) launchSmall<4>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else if (k <= 8) launchSmall<8>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else if (k <= 16) launchSmall<16>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else if (k <= 32) launchSmall<32>(grid, stream, src, len, k, sliceLen, outS, outR, outStride, outSlice);
  else {
    int kp = kThreads;
    while (kp < k) kp <<= 1;
    const size_t bytes = static_cast<size_t>(2) * kp * (sizeof(float) + sizeof(int));
    selectLarge<Src><<<grid, kThreads, bytes, stream>>>(src, len, k, kp, sliceLen, outS, outR, outStride, outSlice);
  }
  return cudaGetLastError();
}

__global__ void negSquaredNormsKernel(const float* x, int rows, int dim, float* bias) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  const float* row = x + static_cast<size_t>(warp) * dim;
  float s = 0.f;
  for (int j = lane; j < dim; j += 32) s = fmaf(row[j], row[j], s);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(kFull, s, off);
  if (lane == 0) bias[warp] = -s;
}

}  // namespace

cudaError_t selectTile(const float* scores, int cols, int batch, const float* bias, const float* mask, int rowBase,
                       int k, int sliceLen, float* outScores, int* outRows, int outStride, int outSlice,
                       cudaStream_t stream) {
  const TileSource src{scores, cols, bias, mask, rowBase};
  return select(src, cols, batch, k, sliceLen, outScores, outRows, outStride, outSlice, stream);
}

cudaError_t mergeCandidates(const float* inScores, const int* inRows, int len, int batch, int k, float* outScores,
                            int* outRows, cudaStream_t stream) {
  const CandidateSource src{inScores, inRows, len};
  return select(src, len, batch, k, len, outScores, outRows, k, 0, stream);
}

cudaError_t negSquaredNorms(const float* x, int rows, int dim, float* bias, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  const int perBlock = kThreads / 32;
  negSquaredNormsKernel<<<(rows + perBlock - 1) / perBlock, kThreads, 0, stream>>>(x, rows, dim, bias);
  return cudaGetLastError();
}

}  // namespace hs
