// libFuzzer target for the GGUF reader; see fuzz/README.md for building and running it, and
// fuzz/gguf_check.h for what is checked on each input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "fuzz/gguf_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  minnow::gguf_fuzz::CheckResult r = minnow::gguf_fuzz::check_input(data, size);
  if (!r.violation.empty()) {
    std::fprintf(stderr, "gguf_reader_fuzz: %s\n", r.violation.c_str());
    std::abort();
  }
  return 0;
}
