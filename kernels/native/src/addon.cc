// N-API binding of the IVF kernel (ivf.h). Long work runs on libuv's thread pool (and the
// kernel's own threads) and settles a promise; arrays stay owned by JavaScript, referenced for
// as long as the work or the index needs them. Sizes are checked here, so a wrong call is a
// TypeError or RangeError, never a read past an array.
#include <napi.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ivf.h"
#include "kernels.h"

namespace {

using hs::Score;

// A promise settled by work run off the JavaScript thread.
class Job : public Napi::AsyncWorker {
 public:
  using Done = std::function<Napi::Value(Napi::Env)>;
  Job(Napi::Env env, std::function<void()> work, Done done, std::vector<Napi::Value> keep)
      : Napi::AsyncWorker(env, "hypersync-ivf"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {
    for (auto& v : keep) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override { work_(); }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  Done done_;
  std::vector<Napi::ObjectReference> keep_;
};

bool fail(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, "native IVF kernel: " + msg).ThrowAsJavaScriptException();
  return false;
}

template <typename T, napi_typedarray_type kType>
bool typed(Napi::Env env, const Napi::Value& v, size_t min_length, const char* name, T** out, size_t* length = nullptr) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    return fail(env, std::string(name) + " has the wrong type");
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (a.ElementLength() < min_length)
    return fail(env, std::string(name) + " holds " + std::to_string(a.ElementLength()) + " values, needs " +
                         std::to_string(min_length));
  *out = a.Data();
  if (length) *length = a.ElementLength();
  return true;
}

bool floats(Napi::Env env, const Napi::Value& v, size_t n, const char* name, float** out) {
  return typed<float, napi_float32_array>(env, v, n, name, out);
}
bool ints(Napi::Env env, const Napi::Value& v, size_t n, const char* name, int32_t** out) {
  return typed<int32_t, napi_int32_array>(env, v, n, name, out);
}

bool integer(Napi::Env env, const Napi::Value& v, int64_t lo, int64_t hi, const char* name, int64_t* out) {
  if (!v.IsNumber()) return fail(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d)
    return fail(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = static_cast<int64_t>(d);
  return true;
}

constexpr int64_t kMaxDim = 65536;
constexpr int64_t kMaxRows = 2147483647;

Napi::Value TopKResult(Napi::Env env, const std::vector<int32_t>& rows, const std::vector<float>& scores) {
  auto r = Napi::Int32Array::New(env, rows.size());
  auto s = Napi::Float32Array::New(env, scores.size());
  std::copy(rows.begin(), rows.end(), r.Data());
  std::copy(scores.begin(), scores.end(), s.Data());
  auto o = Napi::Object::New(env);
  o.Set("rows", r);
  o.Set("scores", s);
  return o;
}

// lloydStep(x, n, dim, centroids, nlist, score, seed, threads, labels, scale, offset) →
// Promise<moved> (centroids and labels are updated in place).
Napi::Value LloydStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n, dim, nlist, score, seed, threads;
  float *x, *c, *scale, *offset;
  int32_t* labels;
  if (!integer(env, info[1], 1, kMaxRows, "n", &n) || !integer(env, info[2], 1, kMaxDim, "dim", &dim) ||
      !integer(env, info[4], 1, n, "nlist", &nlist) || !integer(env, info[5], 0, 1, "score", &score) ||
      !integer(env, info[6], 0, 1LL << 52, "seed", &seed) || !integer(env, info[7], 1, 256, "threads", &threads) ||
      !floats(env, info[0], n * dim, "x", &x) || !floats(env, info[3], nlist * dim, "centroids", &c) ||
      !ints(env, info[8], n, "labels", &labels) || !floats(env, info[9], dim, "scale", &scale) ||
      !floats(env, info[10], dim, "offset", &offset))
    return env.Undefined();
  auto moved = std::make_shared<int64_t>(0);
  auto* job = new Job(
      env,
      [=]() {
        *moved = hs::lloyd_step(x, n, dim, c, nlist, static_cast<Score>(score), seed, scale, offset, threads, labels);
      },
      [moved](Napi::Env e) { return Napi::Number::New(e, static_cast<double>(*moved)); },
      {info[0], info[3], info[8], info[9], info[10]});
  job->Queue();
  return job->promise();
}

// assign(x, n, dim, centroids, nlist, score, threads, labels, scale, offset) → Promise<void>
// (labels filled).
Napi::Value Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n, dim, nlist, score, threads;
  float *x, *c, *scale, *offset;
  int32_t* labels;
  if (!integer(env, info[1], 1, kMaxRows, "n", &n) || !integer(env, info[2], 1, kMaxDim, "dim", &dim) ||
      !integer(env, info[4], 1, kMaxRows, "nlist", &nlist) || !integer(env, info[5], 0, 1, "score", &score) ||
      !integer(env, info[6], 1, 256, "threads", &threads) || !floats(env, info[0], n * dim, "x", &x) ||
      !floats(env, info[3], nlist * dim, "centroids", &c) || !ints(env, info[7], n, "labels", &labels) ||
      !floats(env, info[8], dim, "scale", &scale) || !floats(env, info[9], dim, "offset", &offset))
    return env.Undefined();
  auto* job = new Job(
      env, [=]() { hs::assign(x, n, dim, c, nlist, static_cast<Score>(score), scale, offset, threads, labels); },
      [](Napi::Env e) { return e.Undefined(); }, {info[0], info[3], info[7], info[8], info[9]});
  job->Queue();
  return job->promise();
}

bool layout(Napi::Env env, const Napi::Value& offsets, const Napi::Value& blocks, int64_t nlist, int64_t dim,
            int64_t rows, hs::CodeLayout* L) {
  int32_t *o, *b;
  if (!ints(env, offsets, nlist + 1, "offsets", &o) || !ints(env, blocks, nlist + 1, "blocks", &b)) return false;
  if (o[0] != 0 || b[0] != 0 || o[nlist] != rows) return fail(env, "offsets must run from 0 to the number of rows");
  for (int64_t l = 0; l < nlist; l++) {
    const int64_t count = o[l + 1] - o[l];
    if (count < 0 || b[l + 1] - b[l] != (count + hs::kBlock - 1) / hs::kBlock)
      return fail(env, "blocks must hold ceil(list rows / 16) blocks per list");
  }
  *L = {static_cast<int>(dim), static_cast<int>((dim + 3) / 4 * 4), static_cast<int>(nlist), o, b};
  return true;
}

// encode(x, n, dim, offsets, blocks, nlist, scale, offset, threads, codes) → Promise<void>.
Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n, dim, nlist, threads;
  float *x, *scale, *offset;
  uint8_t* codes;
  hs::CodeLayout L;
  if (!integer(env, info[1], 0, kMaxRows, "n", &n) || !integer(env, info[2], 1, kMaxDim, "dim", &dim) ||
      !integer(env, info[5], 1, kMaxRows, "nlist", &nlist) || !integer(env, info[8], 1, 256, "threads", &threads) ||
      !floats(env, info[0], n * dim, "x", &x) || !layout(env, info[3], info[4], nlist, dim, n, &L) ||
      !floats(env, info[6], dim, "scale", &scale) || !floats(env, info[7], dim, "offset", &offset) ||
      !typed<uint8_t, napi_uint8_array>(env, info[9], static_cast<size_t>(L.blocks[nlist]) * L.dpad * hs::kBlock,
                                        "codes", &codes))
    return env.Undefined();
  auto* job = new Job(
      env, [=]() { hs::encode(x, L, scale, offset, threads, codes); }, [](Napi::Env e) { return e.Undefined(); },
      {info[0], info[3], info[4], info[6], info[7], info[9]});
  job->Queue();
  return job->promise();
}

// An index over lists whose arrays JavaScript owns: new IvfIndex({...}).
class IvfIndex : public Napi::ObjectWrap<IvfIndex> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "IvfIndex",
                       {InstanceMethod("search", &IvfIndex::Search), InstanceMethod("exact", &IvfIndex::Exact),
                        InstanceAccessor("nativeBytes", &IvfIndex::NativeBytes, nullptr)});
  }

  explicit IvfIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IvfIndex>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) {
      fail(env, "IvfIndex takes an object");
      return;
    }
    auto o = info[0].As<Napi::Object>();
    int64_t dim, nlist, rows, score;
    float *centroids, *vectors, *scale, *offset, *bias;
    uint8_t* codes;
    if (!integer(env, o.Get("dim"), 1, kMaxDim, "dim", &dim) ||
        !integer(env, o.Get("nlist"), 1, kMaxRows, "nlist", &nlist) ||
        !integer(env, o.Get("rows"), 0, kMaxRows, "rows", &rows) ||
        !integer(env, o.Get("score"), 0, 1, "score", &score) ||
        !floats(env, o.Get("centroids"), nlist * dim, "centroids", &centroids) ||
        !layout(env, o.Get("offsets"), o.Get("blocks"), nlist, dim, rows, &view_.layout) ||
        !floats(env, o.Get("vectors"), rows * dim, "vectors", &vectors) ||
        !floats(env, o.Get("scale"), dim, "scale", &scale) || !floats(env, o.Get("offset"), dim, "offset", &offset) ||
        !floats(env, o.Get("bias"), rows, "bias", &bias) ||
        !typed<uint8_t, napi_uint8_array>(env, o.Get("codes"),
                                          static_cast<size_t>(view_.layout.blocks[nlist]) * view_.layout.dpad * hs::kBlock,
                                          "codes", &codes))
      return;
    for (const char* key : {"centroids", "offsets", "blocks", "vectors", "scale", "offset", "bias", "codes"})
      keep_.push_back(Napi::Persistent(o.Get(key).As<Napi::Object>()));
    centroids_ = hs::encode_centroids(centroids, static_cast<int>(nlist), static_cast<int>(dim), scale, offset);
    if (score == static_cast<int>(Score::kL2)) {
      norms_.resize(rows);
      hs::squared_norms(vectors, rows, static_cast<int>(dim), norms_.data());
    }
    view_.score = static_cast<Score>(score);
    view_.centroids = &centroids_;
    view_.vectors = vectors;
    view_.norms = norms_.data();
    view_.codes = codes;
    view_.scale = scale;
    view_.offset = offset;
    view_.bias = bias;
    view_.entries = rows;
  }

 private:
  // Queries, batch, k and an optional mask, as search and exact take them.
  bool queryArgs(const Napi::CallbackInfo& info, float** q, int64_t* batch, int64_t* k, float** mask, int mask_at) {
    Napi::Env env = info.Env();
    if (!integer(env, info[1], 1, 1 << 20, "batch", batch) || !integer(env, info[2], 1, 1 << 20, "k", k) ||
        !floats(env, info[0], *batch * view_.layout.dim, "queries", q))
      return false;
    *mask = nullptr;
    if (!info[mask_at].IsUndefined() && !info[mask_at].IsNull() &&
        !floats(env, info[mask_at], view_.entries, "mask", mask))
      return false;
    return true;
  }

  // search(queries, batch, k, nprobe, candidates, threads, mask?) → Promise<{rows, scores}>.
  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    float *q, *mask;
    int64_t batch, k, nprobe, candidates, threads;
    if (!queryArgs(info, &q, &batch, &k, &mask, 6) || !integer(env, info[3], 1, kMaxRows, "nprobe", &nprobe) ||
        !integer(env, info[4], 1, 1 << 24, "candidates", &candidates) ||
        !integer(env, info[5], 1, 256, "threads", &threads))
      return env.Undefined();
    auto rows = std::make_shared<std::vector<int32_t>>(batch * k);
    auto scores = std::make_shared<std::vector<float>>(batch * k);
    const hs::SearchParams p{static_cast<int>(k), static_cast<int>(nprobe), static_cast<int>(candidates), mask,
                             static_cast<int>(threads)};
    const hs::IvfView view = view_;
    std::vector<Napi::Value> keep{info[0], Value()};
    if (mask) keep.push_back(info[6]);
    auto* job = new Job(
        env, [=]() { hs::ivf_search(view, q, static_cast<int>(batch), p, rows->data(), scores->data()); },
        [rows, scores](Napi::Env e) { return TopKResult(e, *rows, *scores); }, keep);
    job->Queue();
    return job->promise();
  }

  // exact(queries, batch, k, threads, mask?) → Promise<{rows, scores}>.
  Napi::Value Exact(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    float *q, *mask;
    int64_t batch, k, threads;
    if (!queryArgs(info, &q, &batch, &k, &mask, 4) || !integer(env, info[3], 1, 256, "threads", &threads))
      return env.Undefined();
    auto rows = std::make_shared<std::vector<int32_t>>(batch * k);
    auto scores = std::make_shared<std::vector<float>>(batch * k);
    const hs::IvfView v = view_;
    std::vector<Napi::Value> keep{info[0], Value()};
    if (mask) keep.push_back(info[4]);
    auto* job = new Job(
        env,
        [=]() {
          hs::exact_search(v.vectors, v.norms, v.entries, v.layout.dim, v.score, v.bias, mask, q, static_cast<int>(batch),
                           static_cast<int>(k), static_cast<int>(threads), rows->data(), scores->data());
        },
        [rows, scores](Napi::Env e) { return TopKResult(e, *rows, *scores); }, keep);
    job->Queue();
    return job->promise();
  }

  // Bytes the index allocated itself (centroid codes, norms); the arrays are JavaScript's.
  Napi::Value NativeBytes(const Napi::CallbackInfo& info) {
    const size_t b = centroids_.codes.size() + (centroids_.norms.size() + norms_.size()) * sizeof(float);
    return Napi::Number::New(info.Env(), static_cast<double>(b));
  }

  hs::IvfView view_{};
  hs::CentroidCodes centroids_;
  std::vector<float> norms_;
  std::vector<Napi::ObjectReference> keep_;
};

// useIsa('best' | 'generic') → the instruction set now in use.
Napi::Value UseIsa(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !hs::use_isa(info[0].As<Napi::String>().Utf8Value().c_str())) {
    fail(env, "useIsa takes 'best' or 'generic'");
    return env.Undefined();
  }
  return Napi::String::New(env, hs::kernels().isa);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("isa", Napi::String::New(env, hs::kernels().isa));
  exports.Set("useIsa", Napi::Function::New(env, UseIsa));
  exports.Set("lloydStep", Napi::Function::New(env, LloydStep));
  exports.Set("assign", Napi::Function::New(env, Assign));
  exports.Set("encode", Napi::Function::New(env, Encode));
  exports.Set("IvfIndex", IvfIndex::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(hypersync_ivf, Init)
