#include "cublas-api.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace hs {

namespace {

std::once_flag once;
CublasApi api;
const CublasApi* loaded = nullptr;
std::string failure;

bool isDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// libcublas.so.<major> files of a folder, newest major first; libcublasLt beside it is loaded
// first (globally) so a folder off the loader's path still resolves.
std::vector<std::string> inFolder(const std::string& dir) {
  std::vector<std::string> out;
  for (const char* major : {"13", "12", ""}) {
    std::string lt = dir + "/libcublasLt.so" + (*major ? std::string(".") + major : "");
    std::string lib = dir + "/libcublas.so" + (*major ? std::string(".") + major : "");
    struct stat st;
    if (stat(lib.c_str(), &st) != 0) continue;
    if (stat(lt.c_str(), &st) == 0) dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL);
    out.push_back(lib);
  }
  return out;
}

template <typename F>
bool sym(void* h, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(dlsym(h, name));
  if (!*out) *missing = name;
  return *out != nullptr;
}

void load() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("HYPERSYNC_CUBLAS_PATH"); env && *env) {
    std::string p(env);
    if (isDir(p)) {
      candidates = inFolder(p);
      if (candidates.empty()) {
        failure = "cuBLAS not found: HYPERSYNC_CUBLAS_PATH=" + p + " holds no libcublas.so*";
        return;
      }
    } else {
      // A file: its libcublasLt sibling first, as for a folder.
      const size_t slash = p.rfind('/');
      if (slash != std::string::npos) inFolder(p.substr(0, slash));
      candidates.push_back(p);
    }
  }
  for (const char* soname : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) candidates.push_back(soname);
  std::string errors;
  for (const auto& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      errors += (errors.empty() ? "" : "; ") + std::string(e ? e : c.c_str());
      continue;
    }
    std::string missing;
    if (sym(h, "cublasCreate_v2", &api.create, &missing) && sym(h, "cublasDestroy_v2", &api.destroy, &missing) &&
        sym(h, "cublasSetStream_v2", &api.setStream, &missing) &&
        sym(h, "cublasSetMathMode", &api.setMathMode, &missing) &&
        sym(h, "cublasGetVersion_v2", &api.getVersion, &missing) &&
        sym(h, "cublasSgemm_v2", &api.sgemm, &missing)) {
      Dl_info info;
      api.path = dladdr(reinterpret_cast<void*>(api.sgemm), &info) && info.dli_fname ? info.dli_fname : c;
      loaded = &api;
      return;
    }
    errors += "; " + c + " lacks " + missing;
    dlclose(h);
  }
  failure = "cuBLAS not found (set HYPERSYNC_CUBLAS_PATH to libcublas.so or its folder): " + errors;
}

}  // namespace

const CublasApi* loadCublas(std::string* reason) {
  std::call_once(once, load);
  if (!loaded && reason) *reason = failure;
  return loaded;
}

const char* cublasStatusName(CublasStatus s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

}  // namespace hs
