// Shared pieces of the standalone check (check.cu) and benchmark (bench.cu).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "engine.h"

namespace check {

// Exit codes: 0 passed, 1 a check failed, 2 bad usage, 77 no CUDA device or driver here,
// 78 cuBLAS not found.
constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kNoDevice = 77;
constexpr int kNoCublas = 78;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>((next() >> 40) * (2.0 / 16777216.0) - 1.0); }
};

void normalise(std::vector<float>& v, int dim);

struct Failure {
  std::string what;
};

// Checks one TopK against a float64 reference over host `vectors`: rows distinct and allowed,
// scores sorted and within a rounding bound of the true kernel scores, and the j-th score equal
// to the reference's j-th within the bound (so rows may differ only between near-ties).
// `bias` (may be null) is added to each row's score; −Infinity rows must not be returned.
// `relTol` scales the bound: 1 for FP32, about 40 for TF32. Returns failures found (at most 5).
std::vector<Failure> compare(const hs::TopK& got, const float* vectors, int rows, int dim, float alpha,
                             const float* bias, const float* queries, int k, double relTol,
                             const std::vector<int>& queriesToCheck);

// Prints a machine-readable result line: `RESULT <key> <value>`.
void result(const std::string& key, const std::string& value);
std::string fixed(double v, int digits);

struct BenchOptions {
  int rows = 1000000;
  int dim = 768;
  int batch = 1024;
  int k = 10;
  int reps = 10;
  int verifyQueries = 3;
  uint64_t seed = 1;
};

// N × d random vectors made on the device, B random queries: times the engine end to end
// (queries in from host memory, top-k back) in FP32 and TF32, and cuBLAS's SGEMM alone on the
// same shapes. Returns the exit code.
int bench(hs::Engine& engine, const BenchOptions& opts);

}  // namespace check
