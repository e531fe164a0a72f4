#include <cstdio>

#include "gguf/gguf.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  auto f = minnow::gguf::File::open(argv[1]);
  if (!f) {
    std::fprintf(stderr, "error: %s\n", f.error().c_str());
    return 1;
  }
  std::printf("v%u kv=%zu tensors=%zu bytes=%llu\n", (*f)->version(), (*f)->metadata().size(),
              (*f)->tensors().size(), (unsigned long long)(*f)->total_tensor_bytes());
  return 0;
}
