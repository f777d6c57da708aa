// Standalone check and benchmark of the CUDA search engine, no Node needed: top-k on fresh
// random data against a float64 CPU reference for ip, cosine and l2 (masks, tombstones, every
// selection path), then the benchmark of bench.cu. Prints `RESULT <key> <value>` lines.
//   check [--seed=S] [--no-bench] [--bench-only] [--rows=N] [--dim=D] [--batch=B] [--k=K] [--reps=R]
// Exit codes: see check.h (77: no CUDA device or driver here, 78: no cuBLAS).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

#include "check.h"

namespace check {

void normalise(std::vector<float>& v, int dim) {
  for (size_t r = 0; r < v.size() / dim; ++r) {
    double s = 0;
    for (int j = 0; j < dim; ++j) s += double(v[r * dim + j]) * v[r * dim + j];
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (int j = 0; j < dim; ++j) v[r * dim + j] *= inv;
  }
}

void result(const std::string& key, const std::string& value) { std::printf("RESULT %s %s\n", key.c_str(), value.c_str()); }

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::vector<Failure> compare(const hs::TopK& got, const float* vectors, int rows, int dim, float alpha,
                             const float* bias, const float* queries, int k, double relTol,
                             const std::vector<int>& queriesToCheck) {
  std::vector<Failure> f;
  const auto add = [&](const std::string& s) {
    if (f.size() < 5) f.push_back({s});
  };
  const int kk = std::min(k, rows);
  if (got.k != kk) add("k is " + std::to_string(got.k) + ", expected " + std::to_string(kk));
  if (!f.empty()) return f;
  std::vector<double> truth(rows);
  for (int q : queriesToCheck) {
    const float* qv = queries + static_cast<size_t>(q) * dim;
    std::vector<std::pair<double, int>> ref;
    double scale = 0;
    for (int r = 0; r < rows; ++r) {
      const double b = bias ? bias[r] : 0.0;
      if (b == -INFINITY) {
        truth[r] = -INFINITY;
        continue;
      }
      double dot = 0, abs = 0;
      for (int j = 0; j < dim; ++j) {
        const double p = double(qv[j]) * vectors[static_cast<size_t>(r) * dim + j];
        dot += p;
        abs += std::fabs(p);
      }
      truth[r] = alpha * dot + b;
      scale = std::max(scale, alpha * abs + std::fabs(b));
      ref.emplace_back(truth[r], r);
    }
    const size_t n = std::min(ref.size(), static_cast<size_t>(kk));
    std::partial_sort(ref.begin(), ref.begin() + n, ref.end(), [](auto& a, auto& b) { return a.first > b.first; });
    const double tol = relTol * 2e-5 * scale + 1e-6;
    std::set<int> seen;
    const std::string at = "query " + std::to_string(q) + " slot ";
    for (int j = 0; j < kk; ++j) {
      const int r = got.rows[static_cast<size_t>(q) * kk + j];
      const float s = got.scores[static_cast<size_t>(q) * kk + j];
      if (r == -1) {
        if (static_cast<size_t>(j) < n) add(at + std::to_string(j) + ": empty, reference has row " + std::to_string(ref[j].second));
        else if (s != -INFINITY) add(at + std::to_string(j) + ": empty slot with score " + std::to_string(s));
        continue;
      }
      if (r < 0 || r >= rows) {
        add(at + std::to_string(j) + ": row " + std::to_string(r) + " out of range");
        continue;
      }
      if (!seen.insert(r).second) add(at + std::to_string(j) + ": row " + std::to_string(r) + " twice");
      if (truth[r] == -INFINITY) add(at + std::to_string(j) + ": masked row " + std::to_string(r) + " returned");
      else if (std::fabs(s - truth[r]) > tol)
        add(at + std::to_string(j) + ": row " + std::to_string(r) + " scored " + std::to_string(s) + ", true " +
            std::to_string(truth[r]));
      if (j > 0 && s > got.scores[static_cast<size_t>(q) * kk + j - 1]) add(at + std::to_string(j) + ": not sorted");
      if (static_cast<size_t>(j) >= n) add(at + std::to_string(j) + ": row " + std::to_string(r) + " beyond the live rows");
      else if (std::fabs(s - ref[j].first) > tol)
        add(at + std::to_string(j) + ": score " + std::to_string(s) + ", reference " + std::to_string(ref[j].first) +
            " (row " + std::to_string(ref[j].second) + ")");
    }
  }
  return f;
}

}  // namespace check

namespace {

using namespace check;

struct Case {
  int rows, dim, batch, k;
  double masked;  // share of rows masked
  bool smallTile;
};

// One case for one metric: resident index with a mask, and transient search with a tombstone
// bias; returns the failures.
int runCase(hs::Engine& engine, const Case& c, const char* metric, bool tf32, uint64_t seed) {
  Rng rng(seed);
  const bool l2 = std::strcmp(metric, "l2") == 0;
  const bool cosine = std::strcmp(metric, "cosine") == 0;
  const float alpha = l2 ? 2.f : 1.f;
  std::vector<float> x(static_cast<size_t>(c.rows) * c.dim), q(static_cast<size_t>(c.batch) * c.dim);
  for (auto& v : x) v = rng.uniform();
  for (auto& v : q) v = rng.uniform();
  if (cosine) {
    normalise(x, c.dim);
    normalise(q, c.dim);
  }
  std::vector<float> mask(c.rows, 0.f), bias(c.rows, 0.f);
  for (int r = 0; r < c.rows; ++r) {
    double n2 = 0;
    for (int j = 0; j < c.dim; ++j) n2 += double(x[static_cast<size_t>(r) * c.dim + j]) * x[static_cast<size_t>(r) * c.dim + j];
    const bool dead = (rng.next() % 100000) < c.masked * 100000;
    mask[r] = dead ? -INFINITY : 0.f;
    bias[r] = dead ? -INFINITY : l2 ? static_cast<float>(-n2) : 0.f;
  }
  engine.setTf32(tf32);
  const double relTol = tf32 ? 50 : 1;
  std::vector<int> qs;
  for (int i = 0; i < c.batch; ++i) qs.push_back(i);
  char name[160];
  std::snprintf(name, sizeof name, "%s %s rows=%d dim=%d batch=%d k=%d masked=%.3f tile=%s", metric,
                tf32 ? "tf32" : "fp32", c.rows, c.dim, c.batch, c.k, c.masked, c.smallTile ? "1MiB" : "default");
  int failures = 0;
  const auto report = [&](const char* path, const hs::Status& s, const std::vector<Failure>& f) {
    if (!s.ok()) {
      std::printf("FAIL %s %s: %s\n", name, path, s.message.c_str());
      ++failures;
      return;
    }
    for (const auto& e : f) std::printf("FAIL %s %s: %s\n", name, path, e.what.c_str());
    failures += f.empty() ? 0 : 1;
  };
  std::shared_ptr<hs::DeviceIndex> index;
  hs::Status s = engine.createIndex(x.data(), c.rows, c.dim, l2, &index);
  std::vector<hs::TopK> got;
  // The index holds −‖x‖² for L2 itself; with the mask its scores are those of `bias`.
  if (s.ok()) s = engine.search({{index, c.masked > 0 ? mask.data() : nullptr}}, q.data(), c.batch, c.k, &got);
  report("resident", s, s.ok() ? compare(got[0], x.data(), c.rows, c.dim, alpha, bias.data(), q.data(), c.k, relTol, qs)
                               : std::vector<Failure>{});
  hs::TopK transient;
  s = engine.searchTransient(x.data(), c.rows, c.dim, alpha, bias.data(), q.data(), c.batch, c.k, &transient);
  report("transient", s, s.ok() ? compare(transient, x.data(), c.rows, c.dim, alpha, bias.data(), q.data(), c.k, relTol, qs)
                                : std::vector<Failure>{});
  if (failures == 0) std::printf("ok   %s\n", name);
  return failures;
}

int arg(int argc, char** argv, const char* key, int fallback) {
  const size_t n = std::strlen(key);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return std::atoi(argv[i] + n + 1);
  }
  return fallback;
}

bool flag(int argc, char** argv, const char* key) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], key) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seed = static_cast<uint64_t>(
      arg(argc, argv, "--seed", static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007)));
  const hs::DeviceReport dev = hs::probeDevice(0);
  if (!dev.ok) {
    std::printf("check: cannot run here: %s\n", dev.reason.c_str());
    result("status", "skipped");
    return dev.reason.rfind("cuBLAS", 0) == 0 ? kNoCublas : dev.reason.rfind("no CUDA", 0) == 0 ? kNoDevice : kFailed;
  }
  std::printf("device: %s (sm_%d%d), %.1f GiB, driver %d, runtime %d, cuBLAS %d (%s)\n", dev.name.c_str(), dev.major,
              dev.minor, dev.totalBytes / 1073741824.0, dev.driverVersion, dev.runtimeVersion, dev.cublasVersion,
              dev.cublasPath.c_str());
  result("gpu", "\"" + dev.name + "\"");
  result("cublas", std::to_string(dev.cublasVersion));
  result("seed", std::to_string(seed));
  int failures = 0;
  if (!flag(argc, argv, "--bench-only")) {
    hs::EngineOptions small;
    small.tileBytes = size_t(1) << 20;
    small.reserveBytes = 0;
    hs::EngineOptions plain;
    plain.reserveBytes = 0;
    std::unique_ptr<hs::Engine> smallTile, defaults;
    hs::Status s = hs::Engine::open(small, &smallTile);
    if (s.ok()) s = hs::Engine::open(plain, &defaults);
    if (!s.ok()) {
      std::printf("FAIL engine: %s\n", s.message.c_str());
      return kFailed;
    }
    const Case cases[] = {
        // Tiles and slices merged (register and shared-memory selection), one slice, the host
        // selection past kMaxDeviceK, k > rows, and all but a few rows masked.
        {20000, 96, 33, 10, 0.1, true},    {40000, 64, 16, 1, 0.05, false},  {5000, 256, 64, 100, 0.1, true},
        {9000, 40, 40, 1024, 0.2, true},   {3000, 768, 8, 32, 0.1, false},   {2500, 24, 3, 2500, 0.1, false},
        {100, 17, 2, 200, 0.0, false},     {30000, 32, 4, 10, 0.9995, true},
    };
    uint64_t n = 0;
    for (const char* metric : {"ip", "cosine", "l2"}) {
      for (const Case& c : cases) {
        failures += runCase(c.smallTile ? *smallTile : *defaults, c, metric, false, seed + ++n);
        if (c.k == 10 || c.k == 100) failures += runCase(c.smallTile ? *smallTile : *defaults, c, metric, true, seed + ++n);
      }
    }
    result("checks", failures == 0 ? "passed" : std::to_string(failures) + "_failed");
  }
  if (!flag(argc, argv, "--no-bench")) {
    BenchOptions b;
    b.rows = arg(argc, argv, "--rows", b.rows);
    b.dim = arg(argc, argv, "--dim", b.dim);
    b.batch = arg(argc, argv, "--batch", b.batch);
    b.k = arg(argc, argv, "--k", b.k);
    b.reps = arg(argc, argv, "--reps", b.reps);
    b.verifyQueries = arg(argc, argv, "--verify", b.verifyQueries);
    b.seed = seed;
    hs::EngineOptions opts;
    std::unique_ptr<hs::Engine> engine;
    const hs::Status s = hs::Engine::open(opts, &engine);
    if (!s.ok()) {
      std::printf("FAIL engine: %s\n", s.message.c_str());
      return kFailed;
    }
    const int rc = bench(*engine, b);
    if (rc != 0) return rc;
  }
  result("status", failures == 0 ? "passed" : "failed");
  return failures == 0 ? 0 : kFailed;
}
