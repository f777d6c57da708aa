// One call's working set on the device: a stream, a cuBLAS handle bound to it, device buffers
// that grow to the largest call seen, and pinned host buffers for queries, masks and results
// (pinned so the copies run asynchronously on the lane's stream).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "cublas-api.h"

namespace hs {

template <typename T>
class DeviceBuffer {
 public:
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  // Room for `n` elements; the old contents are dropped when it grows.
  cudaError_t ensure(size_t n) {
    if (n <= cap_) return cudaSuccess;
    if (p_) cudaFree(p_);
    p_ = nullptr;
    cap_ = 0;
    cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T));
    if (e == cudaSuccess) cap_ = n;
    return e;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t cap_ = 0;
};

template <typename T>
class PinnedBuffer {
 public:
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  cudaError_t ensure(size_t n) {
    if (n <= cap_) return cudaSuccess;
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    cap_ = 0;
    cudaError_t e = cudaHostAlloc(reinterpret_cast<void**>(&p_), n * sizeof(T), cudaHostAllocDefault);
    if (e == cudaSuccess) cap_ = n;
    return e;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t cap_ = 0;
};

struct Lane {
  cudaStream_t stream = nullptr;
  CublasHandle blas = nullptr;
  const CublasApi* api = nullptr;
  int mathMode = -1;
  DeviceBuffer<float> queries, scores, candScores, outScores, mask, vectors, bias;
  DeviceBuffer<int> candRows, outRows;
  PinnedBuffer<float> hostQueries, hostMask, hostScores;
  PinnedBuffer<int> hostRows;

  Lane() = default;
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;
  ~Lane() {
    if (blas && api) api->destroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }
};

}  // namespace hs
