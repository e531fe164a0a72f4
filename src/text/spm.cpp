#include "text/spm.h"

#include <algorithm>

#include "text/unicode.h"

namespace minnow::text {
namespace {

struct Symbol {
  uint32_t pos;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

// Highest score first, then leftmost, as llama.cpp.
struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of left + right when queued; a mismatch later means stale
};

struct BigramAfter {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void SpmEncoder::init(const Vocab& vocab, TokenId unk) {
  vocab_ = &vocab;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    TokenId t = vocab.find(std::string_view(name, 6));
    if (t < 0) {
      const char c = static_cast<char>(b);
      t = vocab.find(std::string_view(&c, 1));
    }
    byte_tokens_[b] = t >= 0 ? t : unk;
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  thread_local std::vector<Symbol> syms;
  thread_local std::vector<Bigram> heap;
  syms.clear();
  heap.clear();
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(text[i])), text.size() - i);
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), idx - 1, idx + 1});
    i += len;
  }
  syms.back().next = -1;

  // Two neighbours merge when their joined text is a token; the best-scored pair goes first.
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = syms[left];
    const Symbol& r = syms[right];
    const TokenId t = vocab_->find(text.substr(l.pos, l.len + r.len));
    if (t < 0) return;
    heap.push_back({vocab_->scores[t], left, right, l.len + r.len});
    std::push_heap(heap.begin(), heap.end(), BigramAfter());
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramAfter());
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const Symbol& s = syms[i];
    const std::string_view piece = text.substr(s.pos, s.len);
    const TokenId t = vocab_->find(piece);
    if (t >= 0) {
      out.push_back(t);
      continue;
    }
    // Not in the vocabulary (only ever a single character): byte fallback.
    for (char c : piece) {
      const TokenId bt = byte_tokens_[static_cast<uint8_t>(c)];
      if (bt >= 0) out.push_back(bt);
    }
  }
}

}  // namespace minnow::text
