#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (CPU only) as the speed opponent for bench/compare.sh.
#
# The sources are the llama.cpp copy vendored in the llama-cpp-python sdist that the fidelity
# goldens were made with (tests/golden/engine/README.md), so the benchmark opponent and the
# fidelity oracle are the same llama.cpp. llama.cpp is never part of minnow: it is built outside
# the repository and only its binary is used.
#
# Idempotent: does nothing when the binary already exists (delete it, or the build folder, to
# rebuild).
#
# Environment:
#   LLAMA_CPP_SRC    llama.cpp source tree (default: the sdist's vendor/llama.cpp, downloaded
#                    and extracted under ~/.cache/minnow/llama.cpp-sdist when not present)
#   LLAMA_CPP_BUILD  build folder (default ~/.cache/minnow/llama.cpp-build)
#   LLAMA_CPP_PY_VERSION  llama-cpp-python sdist version (default 0.3.36)
#   MINNOW_JOBS      parallel compile jobs (default 2)
#
# Prints the path of llama-bench on its last line.
set -euo pipefail

version="${LLAMA_CPP_PY_VERSION:-0.3.36}"
build="${LLAMA_CPP_BUILD:-$HOME/.cache/minnow/llama.cpp-build}"
jobs="${MINNOW_JOBS:-2}"
bin="$build/bin/llama-bench"

if [[ -x "$bin" ]]; then
  echo "llama-bench already built" >&2
  echo "$bin"
  exit 0
fi

src="${LLAMA_CPP_SRC:-}"
if [[ -z "$src" ]]; then
  sdist_name="llama_cpp_python-$version"
  for candidate in "/tmp/lcp/$sdist_name/vendor/llama.cpp" \
                   "$HOME/.cache/minnow/llama.cpp-sdist/$sdist_name/vendor/llama.cpp"; do
    if [[ -f "$candidate/CMakeLists.txt" ]]; then
      src="$candidate"
      break
    fi
  done
fi
if [[ -z "$src" ]]; then
  # The sdist (not a wheel) carries llama.cpp's full sources under vendor/llama.cpp.
  sdist_dir="$HOME/.cache/minnow/llama.cpp-sdist"
  mkdir -p "$sdist_dir"
  python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$sdist_dir"
  tar -xzf "$sdist_dir/llama_cpp_python-$version.tar.gz" -C "$sdist_dir"
  src="$sdist_dir/llama_cpp_python-$version/vendor/llama.cpp"
fi
if [[ ! -f "$src/CMakeLists.txt" ]]; then
  echo "build_llama_cpp: no llama.cpp sources at $src" >&2
  exit 1
fi

echo "build_llama_cpp: $src -> $build" >&2
# CPU only, tuned for this machine (GGML_NATIVE, as minnow's own kernels are), no network
# features: llama-bench only needs libllama + ggml-cpu + common.
# Ninja when installed (faster no-op rebuilds), else CMake's default (make); the generator of an
# existing build folder is kept.
generator=()
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja > /dev/null; then
  generator=(-G Ninja)
fi
nice -n 10 cmake -S "$src" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENCL=OFF -DGGML_RPC=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
  -DBUILD_SHARED_LIBS=OFF >&2
nice -n 10 cmake --build "$build" --target llama-bench -j "$jobs" >&2

if [[ ! -x "$bin" ]]; then
  echo "build_llama_cpp: build finished but $bin is missing" >&2
  exit 1
fi
echo "$bin"
