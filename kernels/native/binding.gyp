{
  "targets": [
    {
      "target_name": "hypersync_ivf",
      "sources": ["src/addon.cc", "src/kernels.cc", "src/ivf.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "ldflags": ["-pthread"]
    }
  ]
}
