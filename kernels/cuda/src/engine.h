// The CUDA search engine: segments resident in device memory (cudaMalloc), scored in tiles by
// cuBLAS SGEMM (FP32, or TF32 when asked for), bias and mask added and top-k selected on the
// device (topk.h). Each call runs on a lane of its own (a stream, a cuBLAS handle, device work
// buffers and pinned host buffers), so one call's transfers overlap another's compute.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hs {

enum class ErrorKind { None, Invalid, OutOfMemory, Device };

struct Status {
  ErrorKind kind = ErrorKind::None;
  std::string message;
  bool ok() const { return kind == ErrorKind::None; }
  static Status fail(ErrorKind kind, std::string message) { return Status{kind, std::move(message)}; }
};

// What the probe found: a usable device and cuBLAS, or why not.
struct DeviceReport {
  bool ok = false;
  std::string reason;
  int device = 0;
  int deviceCount = 0;
  std::string name;
  int major = 0;
  int minor = 0;
  size_t totalBytes = 0;
  size_t freeBytes = 0;
  int runtimeVersion = 0;
  int driverVersion = 0;
  int cublasVersion = 0;
  std::string cublasPath;
};

// Checks the driver, device `device`, a kernel launch on it and cuBLAS (a handle is created and
// destroyed). Never throws; the reason says what is missing.
DeviceReport probeDevice(int device);

struct EngineOptions {
  int device = 0;
  // TF32 tensor cores for the score GEMM (about 3–7× FP32's rate, 10-bit mantissa inputs).
  bool tf32 = false;
  // Bytes of one lane's score tile (`batch × tile rows` floats).
  size_t tileBytes = size_t(512) << 20;
  // Most bytes the resident indexes may hold together; 0: only the device's free memory limits.
  size_t limitBytes = 0;
  // Free device memory an index must leave for the lanes' work buffers.
  size_t reserveBytes = size_t(1) << 30;
};

// Top-k of each query, best first: `batch × k` scores and rows (row −1, −Infinity past the end).
struct TopK {
  int batch = 0;
  int k = 0;
  std::vector<float> scores;
  std::vector<int> rows;
};

// A segment's vectors (and the L2 bias) in device memory; freed with the last reference.
struct DeviceIndex {
  int rows = 0;
  int dim = 0;
  float alpha = 1.f;
  float* x = nullptr;
  float* bias = nullptr;
  size_t bytes = 0;
  int device = 0;
  std::shared_ptr<std::atomic<size_t>> accounted;
  ~DeviceIndex();
};

struct Lane;

class Engine {
 public:
  static Status open(const EngineOptions& opts, std::unique_ptr<Engine>* out);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Copies `rows × dim` floats (host or device memory) into a new index; L2 adds `−‖x‖²`.
  // Refused (OutOfMemory) past `limitBytes` or the device's free memory less `reserveBytes`.
  Status createIndex(const float* vectors, int rows, int dim, bool l2, std::shared_ptr<DeviceIndex>* out);

  struct Item {
    std::shared_ptr<DeviceIndex> index;
    // `index->rows` floats, 0 or −Infinity, in host memory; null when nothing is masked.
    const float* mask = nullptr;
  };
  // The same `batch × dim` host queries over each item; `out` gets one TopK per item with
  // k = min(k, rows).
  Status search(const std::vector<Item>& items, const float* queries, int batch, int k, std::vector<TopK>* out);

  // Top-k over `rows × dim` host vectors passed with the call; `bias` (host, `rows` floats) is
  // added to each score (−‖x‖² for L2, −Infinity for tombstones).
  Status searchTransient(const float* vectors, int rows, int dim, float alpha, const float* bias,
                         const float* queries, int batch, int k, TopK* out);

  void setTf32(bool on) { tf32_ = on; }
  bool tf32() const { return tf32_; }
  int device() const { return opts_.device; }
  size_t accountedBytes() const { return accounted_->load(); }
  const EngineOptions& options() const { return opts_; }
  // Free and total device memory now.
  Status memInfo(size_t* freeBytes, size_t* totalBytes) const;

 private:
  explicit Engine(const EngineOptions& opts);
  Status acquire(Lane** lane);
  void giveBack(Lane* lane);
  // Scores the queries already in `lane` against `x`; the top-k lands in `out`.
  Status run(Lane& lane, const float* x, int rows, int dim, float alpha, const float* bias, const float* mask,
             const float* hostBias, const float* hostMask, int batch, int k, TopK* out);
  Status runOnHost(Lane& lane, const float* x, int rows, int dim, float alpha, const float* bias,
                   const float* hostBias, const float* hostMask, int batch, int k, TopK* out);
  Status gemm(Lane& lane, const float* x, int rows, int dim, float alpha, int batch, float* scores);

  EngineOptions opts_;
  std::atomic<bool> tf32_;
  std::shared_ptr<std::atomic<size_t>> accounted_;
  std::mutex lanesMutex_;
  std::vector<Lane*> idle_;
  std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace hs
