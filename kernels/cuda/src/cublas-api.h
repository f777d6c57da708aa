// The few cuBLAS entry points the kernel calls, declared here and resolved with dlopen at run
// time: the build machine has nvcc but no cuBLAS, and the GPU machine keeps cuBLAS inside its
// Python packages, so one build links nothing of cuBLAS and finds it where it runs.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace hs {

// Values of cublas_api.h (stable across cuBLAS 11 to 13).
using CublasHandle = struct CublasContext*;
using CublasStatus = int;
constexpr int kCublasOpN = 0;
constexpr int kCublasOpT = 1;
constexpr int kCublasDefaultMath = 0;
constexpr int kCublasPedanticMath = 2;
constexpr int kCublasTf32TensorOpMath = 3;

struct CublasApi {
  CublasStatus (*create)(CublasHandle*) = nullptr;
  CublasStatus (*destroy)(CublasHandle) = nullptr;
  CublasStatus (*setStream)(CublasHandle, cudaStream_t) = nullptr;
  CublasStatus (*setMathMode)(CublasHandle, int) = nullptr;
  CublasStatus (*getVersion)(CublasHandle, int*) = nullptr;
  CublasStatus (*sgemm)(CublasHandle, int, int, int, int, int, const float*, const float*, int, const float*, int,
                        const float*, float*, int) = nullptr;
  // The file dlopen loaded, for stats.
  std::string path;
};

// Loads cuBLAS once per process: HYPERSYNC_CUBLAS_PATH (a file, or a folder holding
// libcublas.so.*), then the sonames libcublas.so.13, .so.12, .so on the loader's path. Returns
// nullptr and sets `reason` when none loads or an entry point is missing.
const CublasApi* loadCublas(std::string* reason);

// "CUBLAS_STATUS_…" for a status code.
const char* cublasStatusName(CublasStatus s);

}  // namespace hs
