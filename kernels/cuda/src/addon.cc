// N-API binding of the CUDA engine (engine.h). Device work runs on libuv's thread pool and
// settles a promise; arrays stay owned by JavaScript and referenced while the work reads them.
// A failed call rejects with an Error whose `code` is OUT_OF_MEMORY, INVALID or DEVICE.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "topk.h"

namespace {

using hs::DeviceIndex;
using hs::Engine;
using hs::ErrorKind;
using hs::Status;
using hs::TopK;

const char* codeOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::OutOfMemory: return "OUT_OF_MEMORY";
    case ErrorKind::Invalid: return "INVALID";
    default: return "DEVICE";
  }
}

class Job : public Napi::AsyncWorker {
 public:
  using Done = std::function<Napi::Value(Napi::Env)>;
  Job(Napi::Env env, std::function<Status()> work, Done done, const std::vector<Napi::Value>& keep)
      : Napi::AsyncWorker(env, "hypersync-cuda"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {
    for (const auto& v : keep) {
      if (v.IsObject()) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    status_ = work_();
    if (!status_.ok()) SetError(status_.message);
  }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), "CUDA kernel: " + e.Message());
    err.Set("code", Napi::String::New(Env(), codeOf(status_.kind)));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Status()> work_;
  Done done_;
  Status status_;
  std::vector<Napi::ObjectReference> keep_;
};

bool fail(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, "CUDA kernel: " + msg).ThrowAsJavaScriptException();
  return false;
}

bool floats(Napi::Env env, const Napi::Value& v, size_t n, const char* name, const float** out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    return fail(env, std::string(name) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() < n)
    return fail(env, std::string(name) + " holds " + std::to_string(a.ElementLength()) + " floats, needs " +
                         std::to_string(n));
  *out = a.Data();
  return true;
}

bool integer(Napi::Env env, const Napi::Value& v, double lo, double hi, const char* name, int* out) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(d >= lo && d <= hi) || std::floor(d) != d)
    return fail(env, std::string(name) + " must be an integer in [" + std::to_string(static_cast<long long>(lo)) +
                         ", " + std::to_string(static_cast<long long>(hi)) + "]");
  *out = static_cast<int>(d);
  return true;
}

constexpr double kMaxInt = 2147483647.0;

Napi::Object topKValue(Napi::Env env, const TopK& r) {
  auto scores = Napi::Float32Array::New(env, r.scores.size());
  auto rows = Napi::Int32Array::New(env, r.rows.size());
  if (!r.scores.empty()) std::memcpy(scores.Data(), r.scores.data(), r.scores.size() * sizeof(float));
  if (!r.rows.empty()) std::memcpy(rows.Data(), r.rows.data(), r.rows.size() * sizeof(int));
  auto o = Napi::Object::New(env);
  o.Set("batch", r.batch);
  o.Set("k", r.k);
  o.Set("scores", scores);
  o.Set("rows", rows);
  return o;
}

double optNumber(const Napi::Object& o, const char* key, double fallback) {
  const Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

class CudaIndex : public Napi::ObjectWrap<CudaIndex> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaIndex",
                       {InstanceAccessor<&CudaIndex::Bytes>("bytes"), InstanceMethod<&CudaIndex::Release>("release")});
  }
  explicit CudaIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaIndex>(info) {}
  std::shared_ptr<DeviceIndex> index;

 private:
  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), index ? static_cast<double>(index->bytes) : 0);
  }
  // Drops this reference; the memory is freed once no running search holds the index.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    index.reset();
    return info.Env().Undefined();
  }
};

class CudaEngine : public Napi::ObjectWrap<CudaEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaEngine",
                       {InstanceMethod<&CudaEngine::CreateIndex>("createIndex"),
                        InstanceMethod<&CudaEngine::Search>("search"),
                        InstanceMethod<&CudaEngine::SearchTransient>("searchTransient"),
                        InstanceMethod<&CudaEngine::MemInfo>("memInfo"), InstanceMethod<&CudaEngine::Close>("close"),
                        InstanceAccessor<&CudaEngine::Tf32>("tf32")});
  }

  // new CudaEngine({ device, tf32, tileBytes, limitBytes, reserveBytes })
  explicit CudaEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CudaEngine>(info) {
    Napi::Env env = info.Env();
    const Napi::Object o = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    hs::EngineOptions opts;
    opts.device = static_cast<int>(optNumber(o, "device", 0));
    opts.tf32 = o.Get("tf32").ToBoolean().Value();
    opts.tileBytes = static_cast<size_t>(optNumber(o, "tileBytes", static_cast<double>(opts.tileBytes)));
    opts.limitBytes = static_cast<size_t>(optNumber(o, "limitBytes", 0));
    opts.reserveBytes = static_cast<size_t>(optNumber(o, "reserveBytes", static_cast<double>(opts.reserveBytes)));
    std::unique_ptr<Engine> e;
    const Status s = Engine::open(opts, &e);
    if (!s.ok()) {
      Napi::Error err = Napi::Error::New(env, "CUDA kernel: " + s.message);
      err.Set("code", Napi::String::New(env, codeOf(s.kind)));
      err.ThrowAsJavaScriptException();
      return;
    }
    engine_ = std::shared_ptr<Engine>(std::move(e));
  }

 private:
  bool open(Napi::Env env) {
    if (engine_) return true;
    Napi::Error::New(env, "CUDA kernel: the engine is closed").ThrowAsJavaScriptException();
    return false;
  }

  // createIndex(vectors, rows, dim, l2) → Promise<CudaIndex>
  Napi::Value CreateIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int rows = 0, dim = 0;
    const float* x = nullptr;
    if (!open(env) || !integer(env, info[1], 1, kMaxInt, "rows", &rows) ||
        !integer(env, info[2], 1, 65536, "dim", &dim) ||
        !floats(env, info[0], static_cast<size_t>(rows) * dim, "vectors", &x))
      return env.Undefined();
    const bool l2 = info[3].ToBoolean().Value();
    auto engine = engine_;
    auto out = std::make_shared<std::shared_ptr<DeviceIndex>>();
    auto* job = new Job(
        env, [=] { return engine->createIndex(x, rows, dim, l2, out.get()); },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = env.GetInstanceData<Napi::FunctionReference>()->New({});
          CudaIndex::Unwrap(o)->index = *out;
          return o;
        },
        {info[0]});
    job->Queue();
    return job->promise();
  }

  // search(indexes, masks, queries, batch, k) → Promise<TopK[]>; masks[i] null when none.
  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open(env)) return env.Undefined();
    if (!info[0].IsArray() || !info[1].IsArray()) {
      fail(env, "indexes and masks must be arrays");
      return env.Undefined();
    }
    const auto list = info[0].As<Napi::Array>();
    const auto masks = info[1].As<Napi::Array>();
    int batch = 0, k = 0;
    if (!integer(env, info[3], 0, 65535, "batch", &batch) || !integer(env, info[4], 1, kMaxInt, "k", &k))
      return env.Undefined();
    std::vector<Engine::Item> items;
    std::vector<Napi::Value> keep{info[2]};
    int dim = 0;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const Napi::Value v = list.Get(i);
      CudaIndex* ci = v.IsObject() ? CudaIndex::Unwrap(v.As<Napi::Object>()) : nullptr;
      if (!ci || !ci->index) {
        fail(env, "index " + std::to_string(i) + " is released or not an index");
        return env.Undefined();
      }
      Engine::Item item{ci->index, nullptr};
      dim = ci->index->dim;
      const Napi::Value m = masks.Get(i);
      if (!m.IsNull() && !m.IsUndefined()) {
        if (!floats(env, m, ci->index->rows, "mask", &item.mask)) return env.Undefined();
        keep.push_back(m);
      }
      items.push_back(std::move(item));
    }
    const float* q = nullptr;
    if (!floats(env, info[2], static_cast<size_t>(batch) * dim, "queries", &q)) return env.Undefined();
    auto engine = engine_;
    auto out = std::make_shared<std::vector<TopK>>();
    auto* job = new Job(
        env, [=] { return engine->search(items, q, batch, k, out.get()); },
        [out](Napi::Env env) -> Napi::Value {
          auto arr = Napi::Array::New(env, out->size());
          for (size_t i = 0; i < out->size(); ++i) arr.Set(static_cast<uint32_t>(i), topKValue(env, (*out)[i]));
          return arr;
        },
        keep);
    job->Queue();
    return job->promise();
  }

  // searchTransient(vectors, rows, dim, alpha, bias, queries, batch, k) → Promise<TopK>
  Napi::Value SearchTransient(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int rows = 0, dim = 0, batch = 0, k = 0;
    const float *x = nullptr, *bias = nullptr, *q = nullptr;
    if (!open(env) || !integer(env, info[1], 1, kMaxInt, "rows", &rows) ||
        !integer(env, info[2], 1, 65536, "dim", &dim) || !integer(env, info[6], 0, 65535, "batch", &batch) ||
        !integer(env, info[7], 1, kMaxInt, "k", &k) ||
        !floats(env, info[0], static_cast<size_t>(rows) * dim, "vectors", &x) ||
        !floats(env, info[4], rows, "bias", &bias) ||
        !floats(env, info[5], static_cast<size_t>(batch) * dim, "queries", &q))
      return env.Undefined();
    const float alpha = static_cast<float>(info[3].ToNumber().DoubleValue());
    auto engine = engine_;
    auto out = std::make_shared<TopK>();
    auto* job = new Job(
        env, [=] { return engine->searchTransient(x, rows, dim, alpha, bias, q, batch, k, out.get()); },
        [out](Napi::Env env) -> Napi::Value { return topKValue(env, *out); }, {info[0], info[4], info[5]});
    job->Queue();
    return job->promise();
  }

  Napi::Value MemInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open(env)) return env.Undefined();
    size_t freeBytes = 0, total = 0;
    const Status s = engine_->memInfo(&freeBytes, &total);
    if (!s.ok()) {
      fail(env, s.message);
      return env.Undefined();
    }
    auto o = Napi::Object::New(env);
    o.Set("freeBytes", static_cast<double>(freeBytes));
    o.Set("totalBytes", static_cast<double>(total));
    o.Set("accountedBytes", static_cast<double>(engine_->accountedBytes()));
    return o;
  }

  Napi::Value Tf32(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), engine_ && engine_->tf32());
  }

  // Drops the engine; its lanes are freed once running calls finish.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    engine_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Engine> engine_;
};

// probe(device) → what probeDevice found.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int device = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  const hs::DeviceReport r = hs::probeDevice(device);
  auto o = Napi::Object::New(env);
  o.Set("ok", r.ok);
  o.Set("reason", r.reason);
  o.Set("device", r.device);
  o.Set("deviceCount", r.deviceCount);
  o.Set("name", r.name);
  o.Set("computeCapability", std::to_string(r.major) + "." + std::to_string(r.minor));
  o.Set("totalBytes", static_cast<double>(r.totalBytes));
  o.Set("freeBytes", static_cast<double>(r.freeBytes));
  o.Set("runtimeVersion", r.runtimeVersion);
  o.Set("driverVersion", r.driverVersion);
  o.Set("cublasVersion", r.cublasVersion);
  o.Set("cublasPath", r.cublasPath);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function index = CudaIndex::Define(env);
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(index)));
  exports.Set("CudaIndex", index);
  exports.Set("CudaEngine", CudaEngine::Define(env));
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("maxDeviceK", hs::kMaxDeviceK);
  return exports;
}

}  // namespace

NODE_API_MODULE(hypersync_cuda, Init)
