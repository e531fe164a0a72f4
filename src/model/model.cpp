#include "model/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "model/arch.h"
#include "model/gguf_keys.h"

namespace minnow::model {

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  auto file = gguf::File::open(path);
  if (!file.ok()) return Status::error(file.error());
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(*file);
  auto config = read_config(*m->file_);
  if (!config.ok()) return Status::error(config.error());
  m->config_ = std::move(*config);
  auto weights = load_weights(*m->file_, m->config_);
  if (!weights.ok()) return Status::error(weights.error());
  m->weights_ = std::move(*weights);
  if (options.huge_pages && !std::getenv("MINNOW_NO_HUGE_PAGES")) m->move_to_huge_pages();
  if (options.tokenizer && m->file_->has(gguf_key(Key::kTokenizerModel))) {
    auto tok = text::Tokenizer::load(*m->file_);
    if (!tok.ok()) return Status::error(tok.error());
    m->tokenizer_ = std::move(*tok);
  }
  m->load_ms_ =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

void Model::Unmap::operator()(void* p) const { munmap(p, bytes); }

// Decode streams every weight once per token, and with 4 KiB pages the hardware prefetchers
// stop at each page boundary and the TLB misses every 4 KiB. A file mapping cannot use huge
// pages (the page cache is made of 4 KiB pages), so the tensor data is read once into
// anonymous memory with MADV_HUGEPAGE instead of being used through the mapping
// (read with pread, they never enter this process), which keeps the resident size the same.
// Best effort: without the memory, weights stay in the mapping.
void Model::move_to_huge_pages() {
  const gguf::File& f = *file_;
  const uint8_t* src = f.bytes() + f.data_offset();
  const size_t bytes = f.file_size() - f.data_offset();
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t len = (bytes + kHuge - 1) / kHuge * kHuge + kHuge;
  void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return;
  // The data section starts on a 2 MiB boundary (tensor offsets within it keep their alignment).
  auto* base =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) / kHuge * kHuge);
  madvise(base, len - (base - static_cast<uint8_t*>(raw)), MADV_HUGEPAGE);
  // Read with pread rather than copied from the mapping: the file's pages never enter this
  // process, so the resident size holds one copy of the weights, as with the mapping alone.
  const int fd = open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < bytes;) {
    const ssize_t n = pread(fd, base + off, std::min<size_t>(bytes - off, size_t(64) << 20),
                            static_cast<off_t>(f.data_offset() + off));
    if (n <= 0)
      ok = false;
    else
      off += static_cast<size_t>(n);
  }
  if (fd >= 0) close(fd);
  if (!ok) {
    munmap(raw, len);
    return;
  }
  auto rebase = [&](Matrix& m) {
    if (m.data) m.data = base + (static_cast<const uint8_t*>(m.data) - src);
  };
  rebase(weights_.token_embd);
  rebase(weights_.output);
  for (LayerWeights& L : weights_.layers) {
    for (Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      rebase(*m);
  }
  weight_copy_ = std::unique_ptr<void, Unmap>(raw, Unmap{len});
}

uint64_t Model::n_params() const {
  uint64_t n = 0;
  for (const auto& t : file_->tensors()) n += t.n_elements;
  return n;
}

}  // namespace minnow::model
