#include <string>

#include "cublas-api.h"
#include "engine.h"
#include "topk.h"

namespace hs {

namespace {

std::string cudaText(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

}  // namespace

DeviceReport probeDevice(int device) {
  DeviceReport r;
  r.device = device;
  cudaRuntimeGetVersion(&r.runtimeVersion);
  cudaDriverGetVersion(&r.driverVersion);
  cudaError_t e = cudaGetDeviceCount(&r.deviceCount);
  if (e != cudaSuccess || r.deviceCount == 0) {
    r.reason = std::string("no CUDA device/driver: ") +
               (e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA-capable device is detected");
    cudaGetLastError();
    return r;
  }
  if (device < 0 || device >= r.deviceCount) {
    r.reason = "CUDA device " + std::to_string(device) + " not present (" + std::to_string(r.deviceCount) + " found)";
    return r;
  }
  cudaDeviceProp p;
  if ((e = cudaGetDeviceProperties(&p, device)) != cudaSuccess || (e = cudaSetDevice(device)) != cudaSuccess ||
      (e = cudaMemGetInfo(&r.freeBytes, &r.totalBytes)) != cudaSuccess) {
    r.reason = "CUDA device " + std::to_string(device) + " did not start: " + cudaText(e);
    return r;
  }
  r.name = p.name;
  r.major = p.major;
  r.minor = p.minor;
  // One launch of the addon's own code: a GPU older than its build (sm_90 + PTX) fails here.
  float* d = nullptr;
  if ((e = cudaMalloc(reinterpret_cast<void**>(&d), 2 * sizeof(float))) == cudaSuccess) {
    cudaMemset(d, 0, 2 * sizeof(float));
    e = negSquaredNorms(d, 1, 1, d + 1, nullptr);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    cudaFree(d);
  }
  if (e != cudaSuccess) {
    r.reason = r.name + " (compute capability " + std::to_string(r.major) + "." + std::to_string(r.minor) +
               ") cannot run the addon's kernels: " + cudaText(e);
    cudaGetLastError();
    return r;
  }
  std::string why;
  const CublasApi* api = loadCublas(&why);
  if (!api) {
    r.reason = why;
    return r;
  }
  r.cublasPath = api->path;
  CublasHandle h = nullptr;
  const CublasStatus s = api->create(&h);
  if (s != 0) {
    r.reason = std::string("cuBLAS (") + api->path + ") did not start: " + cublasStatusName(s);
    return r;
  }
  api->getVersion(h, &r.cublasVersion);
  api->destroy(h);
  r.ok = true;
  return r;
}

}  // namespace hs
