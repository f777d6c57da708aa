// The selection kernels of src/topk-kernels.cuh run on the CPU: each thread block's 256 threads
// are std::threads, __syncthreads a barrier (checked: every thread must wait at the same one),
// warp shuffles an exchange through memory. Checks the two-stage top-k (tiles, slices, merge;
// register and shared-memory selection) exactly against std::sort where no GPU is at hand.
//   g++ -std=c++20 -O1 -pthread kernels/cuda/test/emulate.cc -o emulate && ./emulate
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
thread_local dim3 threadIdx;
dim3 blockIdx;

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    const long gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return gen_ != gen; });
  }

 private:
  int n_, count_ = 0;
  long gen_ = 0;
  std::mutex m_;
  std::condition_variable cv_;
};

Barrier* block;
Barrier* warps[8];
int lines[256], preds[256];
float warpFloats[8][32];
int warpInts[8][32];
unsigned char dynamicShared[1 << 16];

void syncAt(int line) {
  lines[threadIdx.x] = line;
  block->wait();
  if (lines[threadIdx.x ^ 1] != line) {
    std::printf("FAIL: threads wait at different barriers (lines %d and %d)\n", line, lines[threadIdx.x ^ 1]);
    std::exit(1);
  }
  block->wait();
}
int __syncthreads_count(int p) {
  preds[threadIdx.x] = p != 0;
  block->wait();
  int n = 0;
  for (int t = 0; t < 256; ++t) n += preds[t];
  block->wait();
  return n;
}
template <typename T, typename A>
T shuffle(A& slots, T v, int off) {
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  slots[w][l] = v;
  warps[w]->wait();
  const T r = l + off < 32 ? slots[w][l + off] : v;
  warps[w]->wait();
  return r;
}
float __shfl_down_sync(unsigned, float v, int off) { return shuffle(warpFloats, v, off); }
int __shfl_down_sync(unsigned, int v, int off) { return shuffle(warpInts, v, off); }
int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
template <typename T>
T __ldg(const T* p) { return *p; }
using std::min;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
#define __syncthreads() syncAt(__LINE__)
#define HS_DYNAMIC_SHARED(name) unsigned char* name = dynamicShared
#include "../src/topk-kernels.cuh"

using namespace hs::kernels;

template <class F>
void launch(unsigned gx, unsigned gy, F f) {
  Barrier b(256);
  block = &b;
  for (auto& w : warps) w = new Barrier(32);
  for (unsigned y = 0; y < gy; ++y) {
    for (unsigned x = 0; x < gx; ++x) {
      blockIdx.x = x;
      blockIdx.y = y;
      std::vector<std::thread> threads;
      for (unsigned t = 0; t < 256; ++t) threads.emplace_back([&, t] {
        threadIdx.x = t;
        f();
      });
      for (auto& t : threads) t.join();
    }
  }
  for (auto& w : warps) delete w;
}

// The dispatch of topk.cu's select().
template <class Src>
void select(const Src& src, int len, int batch, int k, int sliceLen, float* s, int* r, int stride, int outSlice) {
  const unsigned gx = (len + sliceLen - 1) / sliceLen;
  const auto small = [&](auto K) {
    launch(gx, batch, [&] { selectSmall<decltype(K)::value, Src>(src, len, k, sliceLen, s, r, stride, outSlice); });
  };
  if (k <= 1) small(std::integral_constant<int, 1>{});
  else if (k <= 4) small(std::integral_constant<int, 4>{});
  else if (k <= 16) small(std::integral_constant<int, 16>{});
  else if (k <= 32) small(std::integral_constant<int, 32>{});
  else {
    int kp = kThreads;
    while (kp < k) kp <<= 1;
    launch(gx, batch, [&] { selectLarge<Src>(src, len, k, kp, sliceLen, s, r, stride, outSlice); });
  }
}

struct Case {
  int rows, batch, k, sliceLen, tile;
  double masked;
};

int main() {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> uniform(-1, 1);
  int failures = 0;
  for (const Case c : {Case{5000, 3, 10, 2048, 5000, 0.1}, Case{7000, 2, 1, 1024, 3000, 0.0}, Case{3000, 2, 32, 1000, 3000, 0.3},
                       Case{9000, 2, 100, 4096, 4000, 0.2}, Case{6000, 1, 1024, 2048, 6000, 0.1},
                       Case{2000, 2, 600, 1 << 20, 2000, 0.999}, Case{300, 2, 5, 64, 300, 0.99}}) {
    std::vector<float> scores(size_t(c.batch) * c.rows), bias(c.rows), mask(c.rows);
    for (auto& v : scores) v = uniform(rng);
    for (int r = 0; r < c.rows; ++r) {
      bias[r] = uniform(rng) * 0.1f;
      mask[r] = uniform(rng) * 0.5 + 0.5 < c.masked ? -INFINITY : 0.f;
    }
    // Tiles of the score matrix as engine.cu makes them, each written like its own GEMM output.
    int slices = 0;
    for (int r0 = 0; r0 < c.rows; r0 += c.tile) slices += (std::min(c.tile, c.rows - r0) + c.sliceLen - 1) / c.sliceLen;
    const int k = std::min(c.k, c.rows), candLen = slices * k;
    std::vector<float> candS(size_t(c.batch) * candLen, 7.f), outS(size_t(c.batch) * k);
    std::vector<int> candR(candS.size(), 7), outR(outS.size());
    for (int r0 = 0, slice = 0; r0 < c.rows; r0 += c.tile) {
      const int n = std::min(c.tile, c.rows - r0);
      std::vector<float> tile(size_t(c.batch) * n);
      for (int q = 0; q < c.batch; ++q) std::copy_n(&scores[size_t(q) * c.rows + r0], n, &tile[size_t(q) * n]);
      select(TileSource{tile.data(), n, bias.data() + r0, mask.data() + r0, r0}, n, c.batch, k, c.sliceLen, candS.data(),
             candR.data(), candLen, slice);
      slice += (n + c.sliceLen - 1) / c.sliceLen;
    }
    if (slices > 1) {
      select(CandidateSource{candS.data(), candR.data(), candLen}, candLen, c.batch, k, candLen, outS.data(), outR.data(), k, 0);
    } else {
      outS = candS;
      outR = candR;
    }
    int bad = 0;
    for (int q = 0; q < c.batch; ++q) {
      std::vector<std::pair<float, int>> ref;
      for (int r = 0; r < c.rows; ++r) {
        const float v = scores[size_t(q) * c.rows + r] + bias[r] + mask[r];
        if (v > -INFINITY) ref.emplace_back(v, r);
      }
      std::sort(ref.begin(), ref.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
      for (int j = 0; j < k; ++j) {
        const float s = outS[size_t(q) * k + j];
        const int r = outR[size_t(q) * k + j];
        const bool ok = j < int(ref.size()) ? s == ref[j].first : (s == -INFINITY && r == -1);
        if (!ok && bad++ < 3) std::printf("FAIL rows %d k %d query %d slot %d: (%g, %d)\n", c.rows, c.k, q, j, s, r);
      }
    }
    std::printf("%s rows %d, batch %d, k %d, slice %d, tile %d, masked %.3f (%d slices)\n", bad ? "FAIL" : "ok  ", c.rows,
                c.batch, c.k, c.sliceLen, c.tile, c.masked, slices);
    failures += bad;
  }
  return failures ? 1 : 0;
}
