#include "engine.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <functional>
#include <utility>

#include "cublas-api.h"
#include "lane.h"
#include "topk.h"

namespace hs {

namespace {

// Candidates (score and row) stage 1 may leave per call; bounds its buffer to 128 MiB.
constexpr size_t kCandidateBudget = size_t(16) << 20;
// Scores one thread block of stage 1 scans.
constexpr size_t kBaseSlice = 32768;
// Score tile of the host selection (k past kMaxDeviceK).
constexpr size_t kHostTileBytes = size_t(64) << 20;

std::string cudaText(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

Status cudaFail(cudaError_t e, const char* what) {
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return Status::fail(ErrorKind::OutOfMemory, std::string(what) + ": out of device memory");
  }
  return Status::fail(ErrorKind::Device, std::string(what) + ": " + cudaText(e));
}

Status blasFail(CublasStatus s, const char* what) {
  return Status::fail(s == 3 ? ErrorKind::OutOfMemory : ErrorKind::Device, std::string(what) + ": " + cublasStatusName(s));
}

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

#define HS_CUDA(expr, what)                          \
  do {                                               \
    const cudaError_t e_ = (expr);                   \
    if (e_ != cudaSuccess) return cudaFail(e_, what); \
  } while (0)

#define HS_TRY(expr)                \
  do {                              \
    Status s_ = (expr);             \
    if (!s_.ok()) return s_;        \
  } while (0)

}  // namespace

DeviceIndex::~DeviceIndex() {
  cudaSetDevice(device);
  if (x) cudaFree(x);
  if (bias) cudaFree(bias);
  if (accounted) accounted->fetch_sub(bytes);
}

Engine::Engine(const EngineOptions& opts)
    : opts_(opts), tf32_(opts.tf32), accounted_(std::make_shared<std::atomic<size_t>>(0)) {}

Engine::~Engine() {
  cudaSetDevice(opts_.device);
  lanes_.clear();
}

Status Engine::open(const EngineOptions& opts, std::unique_ptr<Engine>* out) {
  std::string why;
  if (!loadCublas(&why)) return Status::fail(ErrorKind::Device, why);
  HS_CUDA(cudaSetDevice(opts.device), "cudaSetDevice");
  out->reset(new Engine(opts));
  return {};
}

Status Engine::memInfo(size_t* freeBytes, size_t* totalBytes) const {
  HS_CUDA(cudaSetDevice(opts_.device), "cudaSetDevice");
  HS_CUDA(cudaMemGetInfo(freeBytes, totalBytes), "cudaMemGetInfo");
  return {};
}

Status Engine::acquire(Lane** out) {
  HS_CUDA(cudaSetDevice(opts_.device), "cudaSetDevice");
  Lane* lane = nullptr;
  {
    std::lock_guard<std::mutex> lock(lanesMutex_);
    if (!idle_.empty()) {
      lane = idle_.back();
      idle_.pop_back();
    }
  }
  if (!lane) {
    auto fresh = std::make_unique<Lane>();
    std::string why;
    fresh->api = loadCublas(&why);
    if (!fresh->api) return Status::fail(ErrorKind::Device, why);
    HS_CUDA(cudaStreamCreateWithFlags(&fresh->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    CublasStatus s = fresh->api->create(&fresh->blas);
    if (s != 0) return blasFail(s, "cublasCreate");
    if ((s = fresh->api->setStream(fresh->blas, fresh->stream)) != 0) return blasFail(s, "cublasSetStream");
    lane = fresh.get();
    std::lock_guard<std::mutex> lock(lanesMutex_);
    lanes_.push_back(std::move(fresh));
  }
  const int mode = tf32_ ? kCublasTf32TensorOpMath : kCublasDefaultMath;
  if (lane->mathMode != mode) {
    const CublasStatus s = lane->api->setMathMode(lane->blas, mode);
    if (s != 0) {
      giveBack(lane);
      return blasFail(s, "cublasSetMathMode");
    }
    lane->mathMode = mode;
  }
  *out = lane;
  return {};
}

void Engine::giveBack(Lane* lane) {
  std::lock_guard<std::mutex> lock(lanesMutex_);
  idle_.push_back(lane);
}

namespace {
// Hands a lane back however the call ends.
struct LaneGuard {
  std::function<void()> done;
  ~LaneGuard() {
    if (done) done();
  }
};
}  // namespace

Status Engine::createIndex(const float* vectors, int rows, int dim, bool l2, std::shared_ptr<DeviceIndex>* out) {
  if (rows < 1 || dim < 1) return Status::fail(ErrorKind::Invalid, "an index needs at least one row and dimension");
  const size_t bytes = static_cast<size_t>(rows) * dim * sizeof(float) + (l2 ? rows * sizeof(float) : 0);
  HS_CUDA(cudaSetDevice(opts_.device), "cudaSetDevice");
  // Reserve the bytes against the limit first, so concurrent builds cannot both pass it.
  size_t held = accounted_->load();
  do {
    if (opts_.limitBytes && held + bytes > opts_.limitBytes) {
      return Status::fail(ErrorKind::OutOfMemory, "the index needs " + mib(bytes) + " of device memory; the limit is " +
                                                      mib(opts_.limitBytes) + " and indexes hold " + mib(held));
    }
  } while (!accounted_->compare_exchange_weak(held, held + bytes));
  auto idx = std::make_shared<DeviceIndex>();
  idx->rows = rows;
  idx->dim = dim;
  idx->alpha = l2 ? 2.f : 1.f;
  idx->device = opts_.device;
  idx->bytes = bytes;
  idx->accounted = accounted_;
  size_t freeBytes = 0, total = 0;
  HS_CUDA(cudaMemGetInfo(&freeBytes, &total), "cudaMemGetInfo");
  if (bytes + opts_.reserveBytes > freeBytes) {
    return Status::fail(ErrorKind::OutOfMemory, "the index needs " + mib(bytes) + " of device memory; the device has " +
                                                    mib(freeBytes) + " free and keeps " + mib(opts_.reserveBytes) +
                                                    " for search buffers");
  }
  HS_CUDA(cudaMalloc(reinterpret_cast<void**>(&idx->x), static_cast<size_t>(rows) * dim * sizeof(float)), "cudaMalloc");
  HS_CUDA(cudaMemcpy(idx->x, vectors, static_cast<size_t>(rows) * dim * sizeof(float), cudaMemcpyDefault),
          "copying vectors to the device");
  if (l2) {
    HS_CUDA(cudaMalloc(reinterpret_cast<void**>(&idx->bias), rows * sizeof(float)), "cudaMalloc");
    cudaStream_t stream;
    HS_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaError_t e = negSquaredNorms(idx->x, rows, dim, idx->bias, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
    HS_CUDA(e, "computing squared norms");
  }
  *out = std::move(idx);
  return {};
}

Status Engine::search(const std::vector<Item>& items, const float* queries, int batch, int k, std::vector<TopK>* out) {
  out->assign(items.size(), TopK{});
  if (items.empty() || batch < 1 || k < 1) return {};
  const int dim = items[0].index->dim;
  for (const auto& it : items) {
    if (it.index->dim != dim) return Status::fail(ErrorKind::Invalid, "indexes of one search differ in dimension");
  }
  Lane* lane = nullptr;
  HS_TRY(acquire(&lane));
  LaneGuard guard{[this, lane] { giveBack(lane); }};
  const size_t qn = static_cast<size_t>(batch) * dim;
  HS_CUDA(lane->hostQueries.ensure(qn), "cudaHostAlloc");
  HS_CUDA(lane->queries.ensure(qn), "cudaMalloc");
  std::memcpy(lane->hostQueries.get(), queries, qn * sizeof(float));
  HS_CUDA(cudaMemcpyAsync(lane->queries.get(), lane->hostQueries.get(), qn * sizeof(float), cudaMemcpyHostToDevice,
                          lane->stream),
          "copying queries");
  for (size_t i = 0; i < items.size(); ++i) {
    const DeviceIndex& idx = *items[i].index;
    const float* mask = nullptr;
    if (items[i].mask) {
      HS_CUDA(lane->hostMask.ensure(idx.rows), "cudaHostAlloc");
      HS_CUDA(lane->mask.ensure(idx.rows), "cudaMalloc");
      std::memcpy(lane->hostMask.get(), items[i].mask, idx.rows * sizeof(float));
      HS_CUDA(cudaMemcpyAsync(lane->mask.get(), lane->hostMask.get(), idx.rows * sizeof(float), cudaMemcpyHostToDevice,
                              lane->stream),
              "copying the mask");
      mask = lane->mask.get();
    }
    // `run` waits for its stream, so the pinned mask is free again for the next index.
    HS_TRY(run(*lane, idx.x, idx.rows, dim, idx.alpha, idx.bias, mask, nullptr, items[i].mask, batch, k, &(*out)[i]));
  }
  return {};
}

Status Engine::searchTransient(const float* vectors, int rows, int dim, float alpha, const float* bias,
                               const float* queries, int batch, int k, TopK* out) {
  *out = TopK{};
  if (rows < 1 || batch < 1 || k < 1) return {};
  Lane* lane = nullptr;
  HS_TRY(acquire(&lane));
  LaneGuard guard{[this, lane] { giveBack(lane); }};
  const size_t qn = static_cast<size_t>(batch) * dim;
  const size_t xn = static_cast<size_t>(rows) * dim;
  HS_CUDA(lane->hostQueries.ensure(qn), "cudaHostAlloc");
  HS_CUDA(lane->queries.ensure(qn), "cudaMalloc");
  HS_CUDA(lane->vectors.ensure(xn), "cudaMalloc");
  HS_CUDA(lane->bias.ensure(rows), "cudaMalloc");
  std::memcpy(lane->hostQueries.get(), queries, qn * sizeof(float));
  HS_CUDA(cudaMemcpyAsync(lane->queries.get(), lane->hostQueries.get(), qn * sizeof(float), cudaMemcpyHostToDevice,
                          lane->stream),
          "copying queries");
  // Pageable sources: the copies are staged before these calls return.
  HS_CUDA(cudaMemcpyAsync(lane->vectors.get(), vectors, xn * sizeof(float), cudaMemcpyHostToDevice, lane->stream),
          "copying vectors");
  HS_CUDA(cudaMemcpyAsync(lane->bias.get(), bias, rows * sizeof(float), cudaMemcpyHostToDevice, lane->stream),
          "copying the bias");
  return run(*lane, lane->vectors.get(), rows, dim, alpha, lane->bias.get(), nullptr, bias, nullptr, batch, k, out);
}

Status Engine::gemm(Lane& lane, const float* x, int rows, int dim, float alpha, int batch, float* scores) {
  // Column-major view: scores (rows × batch, ld rows) = xᵀ(rows × dim) · q(dim × batch), so
  // each query's scores are contiguous.
  const float beta = 0.f;
  const CublasStatus s = lane.api->sgemm(lane.blas, kCublasOpT, kCublasOpN, rows, batch, dim, &alpha, x, dim,
                                         lane.queries.get(), dim, &beta, scores, rows);
  return s == 0 ? Status{} : blasFail(s, "cublasSgemm");
}

Status Engine::run(Lane& lane, const float* x, int rows, int dim, float alpha, const float* bias, const float* mask,
                   const float* hostBias, const float* hostMask, int batch, int k, TopK* out) {
  const int kk = std::min(k, rows);
  if (kk > kMaxDeviceK) return runOnHost(lane, x, rows, dim, alpha, bias, hostBias, hostMask, batch, kk, out);
  size_t tile = std::max<size_t>(1, opts_.tileBytes / (sizeof(float) * batch));
  if (tile < static_cast<size_t>(rows)) tile = std::max<size_t>(256, tile / 256 * 256);
  tile = std::min<size_t>(tile, rows);
  int kp = 256;
  while (kp < kk) kp <<= 1;
  const size_t base = kk <= 32 ? kBaseSlice : std::max<size_t>(kBaseSlice, size_t(16) * kp);
  const size_t maxSlices = std::max<size_t>(1, kCandidateBudget / (static_cast<size_t>(batch) * kk));
  const size_t sliceLen = std::min<size_t>(INT_MAX, std::max(base, (rows + maxSlices - 1) / maxSlices));
  size_t slices = 0;
  for (size_t r0 = 0; r0 < static_cast<size_t>(rows); r0 += tile) {
    slices += (std::min(tile, rows - r0) + sliceLen - 1) / sliceLen;
  }
  const size_t candLen = slices * kk;
  const size_t outN = static_cast<size_t>(batch) * kk;
  HS_CUDA(lane.scores.ensure(static_cast<size_t>(batch) * tile), "cudaMalloc (score tile)");
  HS_CUDA(lane.candScores.ensure(batch * candLen), "cudaMalloc");
  HS_CUDA(lane.candRows.ensure(batch * candLen), "cudaMalloc");
  int slice = 0;
  for (size_t r0 = 0; r0 < static_cast<size_t>(rows); r0 += tile) {
    const int cr = static_cast<int>(std::min(tile, rows - r0));
    HS_TRY(gemm(lane, x + r0 * dim, cr, dim, alpha, batch, lane.scores.get()));
    HS_CUDA(selectTile(lane.scores.get(), cr, batch, bias ? bias + r0 : nullptr, mask ? mask + r0 : nullptr,
                       static_cast<int>(r0), kk, static_cast<int>(sliceLen), lane.candScores.get(),
                       lane.candRows.get(), static_cast<int>(candLen), slice, lane.stream),
            "top-k selection");
    slice += static_cast<int>((cr + sliceLen - 1) / sliceLen);
  }
  const float* resultScores = lane.candScores.get();
  const int* resultRows = lane.candRows.get();
  if (slices > 1) {
    HS_CUDA(lane.outScores.ensure(outN), "cudaMalloc");
    HS_CUDA(lane.outRows.ensure(outN), "cudaMalloc");
    HS_CUDA(mergeCandidates(lane.candScores.get(), lane.candRows.get(), static_cast<int>(candLen), batch, kk,
                            lane.outScores.get(), lane.outRows.get(), lane.stream),
            "top-k merge");
    resultScores = lane.outScores.get();
    resultRows = lane.outRows.get();
  }
  HS_CUDA(lane.hostScores.ensure(outN), "cudaHostAlloc");
  HS_CUDA(lane.hostRows.ensure(outN), "cudaHostAlloc");
  HS_CUDA(cudaMemcpyAsync(lane.hostScores.get(), resultScores, outN * sizeof(float), cudaMemcpyDeviceToHost,
                          lane.stream),
          "copying results");
  HS_CUDA(cudaMemcpyAsync(lane.hostRows.get(), resultRows, outN * sizeof(int), cudaMemcpyDeviceToHost, lane.stream),
          "copying results");
  HS_CUDA(cudaStreamSynchronize(lane.stream), "search");
  out->batch = batch;
  out->k = kk;
  out->scores.assign(lane.hostScores.get(), lane.hostScores.get() + outN);
  out->rows.assign(lane.hostRows.get(), lane.hostRows.get() + outN);
  return {};
}

Status Engine::runOnHost(Lane& lane, const float* x, int rows, int dim, float alpha, const float* bias,
                         const float* hostBias, const float* hostMask, int batch, int k, TopK* out) {
  std::vector<float> biasCopy;
  if (!hostBias && bias) {
    biasCopy.resize(rows);
    HS_CUDA(cudaMemcpyAsync(biasCopy.data(), bias, rows * sizeof(float), cudaMemcpyDeviceToHost, lane.stream),
            "copying the bias");
    HS_CUDA(cudaStreamSynchronize(lane.stream), "copying the bias");
    hostBias = biasCopy.data();
  }
  const size_t tile = std::min<size_t>(rows, std::max<size_t>(256, kHostTileBytes / (sizeof(float) * batch)));
  HS_CUDA(lane.scores.ensure(static_cast<size_t>(batch) * tile), "cudaMalloc (score tile)");
  std::vector<float> scores(static_cast<size_t>(batch) * tile);
  using Hit = std::pair<float, int>;
  const auto better = [](const Hit& a, const Hit& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  std::vector<std::vector<Hit>> best(batch);
  for (size_t r0 = 0; r0 < static_cast<size_t>(rows); r0 += tile) {
    const int cr = static_cast<int>(std::min(tile, rows - r0));
    HS_TRY(gemm(lane, x + r0 * dim, cr, dim, alpha, batch, lane.scores.get()));
    HS_CUDA(cudaMemcpyAsync(scores.data(), lane.scores.get(), static_cast<size_t>(batch) * cr * sizeof(float),
                            cudaMemcpyDeviceToHost, lane.stream),
            "copying scores");
    HS_CUDA(cudaStreamSynchronize(lane.stream), "scoring");
    for (int q = 0; q < batch; ++q) {
      auto& list = best[q];
      const float* s = scores.data() + static_cast<size_t>(q) * cr;
      for (int i = 0; i < cr; ++i) {
        float v = s[i];
        if (hostBias) v += hostBias[r0 + i];
        if (hostMask) v += hostMask[r0 + i];
        if (v > -INFINITY) list.emplace_back(v, static_cast<int>(r0) + i);
      }
      if (list.size() > static_cast<size_t>(2 * k)) {
        std::nth_element(list.begin(), list.begin() + k, list.end(), better);
        list.resize(k);
      }
    }
  }
  out->batch = batch;
  out->k = k;
  out->scores.assign(static_cast<size_t>(batch) * k, -INFINITY);
  out->rows.assign(static_cast<size_t>(batch) * k, -1);
  for (int q = 0; q < batch; ++q) {
    auto& list = best[q];
    const size_t n = std::min(list.size(), static_cast<size_t>(k));
    std::partial_sort(list.begin(), list.begin() + n, list.end(), better);
    for (size_t j = 0; j < n; ++j) {
      out->scores[static_cast<size_t>(q) * k + j] = list[j].first;
      out->rows[static_cast<size_t>(q) * k + j] = list[j].second;
    }
  }
  return {};
}

}  // namespace hs
