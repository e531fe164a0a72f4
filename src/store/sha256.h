// SHA-256 (OpenSSL's, which uses the CPU's SHA extensions where there are some): blob digests.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace minnow::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes; the object is spent afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view bytes);
// Reads the whole file; the error names it.
Result<std::string> sha256_file(const std::string& path);

}  // namespace minnow::store
