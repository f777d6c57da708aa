// Top-k selection on the device: per query, thread blocks each take a slice of the scores and
// keep its best k (stage 1), then one block per query merges the slices' candidates (stage 2).
// Scores are "kernel scores" (larger is better); −Infinity and NaN never enter a list, so slots
// past the rows that may be returned keep row −1 and score −Infinity.
#pragma once

#include <cuda_runtime.h>

namespace hs {

// Largest k the device selection handles; a larger k is selected on the host (engine.cu).
constexpr int kMaxDeviceK = 2048;

// Stage 1 over a GEMM tile: `scores` holds `batch` rows of `cols` floats (leading dimension
// `cols`); to column i of query q it adds `bias[i]` and `mask[i]` (either may be null) and ranks
// it as row `rowBase + i`. Each query's slices `[s·sliceLen, (s+1)·sliceLen)` write `k` candidates
// each to `outScores/outRows + q·outStride + (outSlice + s)·k`.
cudaError_t selectTile(const float* scores, int cols, int batch, const float* bias, const float* mask, int rowBase,
                       int k, int sliceLen, float* outScores, int* outRows, int outStride, int outSlice,
                       cudaStream_t stream);

// Stage 2: the best `k` of the `len` candidates of each query (`inScores/inRows + q·len`) into
// `outScores/outRows + q·k`, best first.
cudaError_t mergeCandidates(const float* inScores, const int* inRows, int len, int batch, int k, float* outScores,
                            int* outRows, cudaStream_t stream);

// `bias[r] = −‖x_r‖²` for the L2 kernel score `2·q·x − ‖x‖²`.
cudaError_t negSquaredNorms(const float* x, int rows, int dim, float* bias, cudaStream_t stream);

}  // namespace hs
