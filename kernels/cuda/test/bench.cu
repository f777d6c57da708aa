// The benchmark of the standalone check: N × d random vectors made on the device, B queries,
// k best: the engine end to end (queries from host memory in, top-k back to host memory) in
// FP32 and TF32, and cuBLAS's SGEMM alone over the same tiles, measured in the same run.
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <set>

#include "check.h"
#include "cublas-api.h"

namespace check {

namespace {

__global__ void fill(float* x, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x[i] = static_cast<float>((z >> 40) * (2.0 / 16777216.0) - 1.0);
  }
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int cudaFailed(cudaError_t e, const char* what) {
  std::printf("FAIL bench: %s: %s\n", what, cudaGetErrorString(e));
  return kFailed;
}

// Seconds per pass of cuBLAS SGEMM over all `rows` in tiles of `tile` rows.
double gemmSeconds(const hs::CublasApi& api, hs::CublasHandle h, cudaStream_t stream, const float* x, int rows, int dim,
                   const float* q, int batch, float* scores, size_t tile, int reps) {
  const float alpha = 1.f, beta = 0.f;
  const auto pass = [&] {
    for (size_t r0 = 0; r0 < static_cast<size_t>(rows); r0 += tile) {
      const int cr = static_cast<int>(std::min(tile, rows - r0));
      api.sgemm(h, hs::kCublasOpT, hs::kCublasOpN, cr, batch, dim, &alpha, x + r0 * dim, dim, q, dim, &beta, scores, cr);
    }
  };
  pass();
  cudaStreamSynchronize(stream);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a, stream);
  for (int i = 0; i < reps; ++i) pass();
  cudaEventRecord(b, stream);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / 1000.0 / reps;
}

}  // namespace

int bench(hs::Engine& engine, const BenchOptions& o) {
  const std::string shape = "N=" + std::to_string(o.rows) + ",d=" + std::to_string(o.dim) + ",B=" +
                            std::to_string(o.batch) + ",k=" + std::to_string(o.k);
  std::printf("bench: %s, %d timed batches per mode\n", shape.c_str(), o.reps);
  result("bench_shape", shape);
  const size_t n = static_cast<size_t>(o.rows) * o.dim;
  float* d = nullptr;
  cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&d), n * sizeof(float));
  if (e != cudaSuccess) return cudaFailed(e, "cudaMalloc");
  fill<<<4096, 256>>>(d, n, o.seed);
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return cudaFailed(e, "fill");
  std::vector<float> host;
  if (o.verifyQueries > 0) {
    host.resize(n);
    cudaMemcpy(host.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  }
  std::shared_ptr<hs::DeviceIndex> index;
  double t = now();
  hs::Status s = engine.createIndex(d, o.rows, o.dim, false, &index);
  cudaFree(d);
  if (!s.ok()) {
    std::printf("FAIL bench: createIndex: %s\n", s.message.c_str());
    return kFailed;
  }
  result("index_build_s", fixed(now() - t, 3));
  Rng rng(o.seed ^ 0xabcdef);
  std::vector<float> q(static_cast<size_t>(o.batch) * o.dim);
  for (auto& v : q) v = rng.uniform();
  std::vector<hs::TopK> results[2];
  int failures = 0;
  for (int mode = 0; mode < 2; ++mode) {
    const char* name = mode ? "tf32" : "fp32";
    engine.setTf32(mode == 1);
    for (int i = 0; i < 2 && s.ok(); ++i) s = engine.search({{index, nullptr}}, q.data(), o.batch, o.k, &results[mode]);
    t = now();
    for (int i = 0; i < o.reps && s.ok(); ++i) s = engine.search({{index, nullptr}}, q.data(), o.batch, o.k, &results[mode]);
    const double elapsed = now() - t;
    if (!s.ok()) {
      std::printf("FAIL bench: search (%s): %s\n", name, s.message.c_str());
      return kFailed;
    }
    const double qps = double(o.batch) * o.reps / elapsed;
    std::printf("engine %s: %.0f queries/s (%.2f ms per batch of %d)\n", name, qps, elapsed * 1000 / o.reps, o.batch);
    result(std::string(name) + "_qps", fixed(qps, 0));
    result(std::string(name) + "_batch_ms", fixed(elapsed * 1000 / o.reps, 2));
    if (!host.empty()) {
      std::vector<int> qs;
      for (int i = 0; i < std::min(o.verifyQueries, o.batch); ++i) qs.push_back(i * (o.batch / std::max(1, o.verifyQueries)));
      const auto f = compare(results[mode][0], host.data(), o.rows, o.dim, 1.f, nullptr, q.data(), o.k, mode ? 50 : 1, qs);
      for (const auto& x : f) std::printf("FAIL bench %s verify: %s\n", name, x.what.c_str());
      result(std::string(name) + "_verify", f.empty() ? "ok(" + std::to_string(qs.size()) + "q)" : "FAILED");
      failures += f.empty() ? 0 : 1;
    }
  }
  // TF32 against FP32: the share of FP32's rows TF32 also returned.
  size_t same = 0;
  const auto& a = results[0][0];
  const auto& b = results[1][0];
  for (int qi = 0; qi < a.batch; ++qi) {
    std::set<int> rows(a.rows.begin() + size_t(qi) * a.k, a.rows.begin() + size_t(qi + 1) * a.k);
    for (int j = 0; j < b.k; ++j) same += rows.count(b.rows[size_t(qi) * b.k + j]);
  }
  result("tf32_recall_vs_fp32", fixed(double(same) / (double(a.batch) * a.k), 4));
  // cuBLAS alone on the engine's tiles.
  std::string why;
  const hs::CublasApi* api = hs::loadCublas(&why);
  hs::CublasHandle h = nullptr;
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  api->create(&h);
  api->setStream(h, stream);
  const size_t tile = std::min<size_t>(o.rows, engine.options().tileBytes / (sizeof(float) * o.batch));
  float *dq = nullptr, *scores = nullptr;
  if ((e = cudaMalloc(reinterpret_cast<void**>(&dq), q.size() * sizeof(float))) != cudaSuccess ||
      (e = cudaMalloc(reinterpret_cast<void**>(&scores), tile * o.batch * sizeof(float))) != cudaSuccess)
    return cudaFailed(e, "cudaMalloc");
  cudaMemcpy(dq, q.data(), q.size() * sizeof(float), cudaMemcpyHostToDevice);
  for (int mode = 0; mode < 2; ++mode) {
    const char* name = mode ? "tf32" : "fp32";
    api->setMathMode(h, mode ? hs::kCublasTf32TensorOpMath : hs::kCublasDefaultMath);
    const double sec = gemmSeconds(*api, h, stream, index->x, o.rows, o.dim, dq, o.batch, scores, tile, o.reps);
    const double tflops = 2.0 * o.rows * o.batch * o.dim / sec / 1e12;
    std::printf("cuBLAS SGEMM %s: %.1f TFLOP/s (%.2f ms per batch: at most %.0f queries/s)\n", name, tflops,
                sec * 1000, o.batch / sec);
    result(std::string("sgemm_") + name + "_tflops", fixed(tflops, 1));
    result(std::string("sgemm_") + name + "_qps_ceiling", fixed(o.batch / sec, 0));
  }
  api->destroy(h);
  cudaStreamDestroy(stream);
  cudaFree(dq);
  cudaFree(scores);
  return failures == 0 ? 0 : kFailed;
}

}  // namespace check
