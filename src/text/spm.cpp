#include "text/spm.h"

#include <algorithm>

#include "text/unicode.h"

namespace minnow::text {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

// Beyond this many crossing tokens, cutting the text into words is not worth the search.
constexpr size_t kMaxCrossing = 64;

bool valid_utf8(std::string_view s) {
  std::string scratch;
  append_valid_utf8(s, scratch);
  return scratch == s;
}

struct Symbol {
  uint32_t pos;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
  TokenId token;  // known once merged; single characters are looked up at the end
};

// Highest score first, then leftmost, as llama.cpp.
struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of left + right when queued; a mismatch later means stale
  TokenId token;  // the joined text
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
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string_view t = vocab.text(static_cast<TokenId>(id));
    size_t k = t.find(kSpaceMark, 1);
    if (k == std::string_view::npos) continue;  // most tokens
    const bool valid = valid_utf8(t);
    for (; k != std::string_view::npos; k = t.find(kSpaceMark, k + 1)) {
      // Runs of U+2581 never straddle a cut; anything else before one might, and so might
      // any U+2581 in a token that is not valid UTF-8 (its characters need not line up).
      if (!valid || !(k >= 3 && t.substr(k - 3, 3) == kSpaceMark)) {
        crossing_.emplace_back(t);
        break;
      }
    }
  }
}

void SpmEncoder::encode(std::string_view text, std::vector<TokenId>& out, WordCache* cache) const {
  if (text.empty()) return;
  // Word starts: each U+2581 after another character, unless a crossing token covers it.
  // With many crossing tokens the whole text is one word (exact, just slower).
  std::vector<size_t> starts{0};
  if (crossing_.size() <= kMaxCrossing) {
    std::vector<std::pair<size_t, size_t>> covered;  // [begin, end) of crossing occurrences
    for (const std::string& c : crossing_) {
      for (size_t p = text.find(c); p != std::string_view::npos; p = text.find(c, p + 1)) {
        covered.emplace_back(p, p + c.size());
      }
    }
    std::sort(covered.begin(), covered.end());
    size_t next_cover = 0, covered_to = 0;  // sweep: furthest end of occurrences begun before i
    // The symbols are the characters encode_word() starts from (lead-byte lengths).
    size_t prev = 0;
    for (size_t i = 0; i < text.size();) {
      const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(text[i])), text.size() - i);
      while (next_cover < covered.size() && covered[next_cover].first < i) {
        covered_to = std::max(covered_to, covered[next_cover++].second);
      }
      if (i > 0 && covered_to <= i && text.compare(i, len, kSpaceMark) == 0 &&
          text.compare(prev, i - prev, kSpaceMark) != 0) {
        starts.push_back(i);
      }
      prev = i;
      i += len;
    }
  }
  starts.push_back(text.size());

  const size_t n_words = starts.size() - 1;
  for (size_t w = 0; w < n_words; ++w) {
    const std::string_view word = text.substr(starts[w], starts[w + 1] - starts[w]);
    const bool cacheable = cache && word.size() <= WordCache::kMaxWordBytes;
    if (cacheable && cache->lookup(word, out)) continue;
    const size_t before = out.size();
    encode_word(word, out);
    if (cacheable) cache->insert(word, out.data() + before, out.size() - before);
  }
}

void SpmEncoder::encode_word(std::string_view text, std::vector<TokenId>& out) const {
  // Scratch kept per thread; plain references so the loops do not go through TLS each time.
  thread_local std::vector<Symbol> tls_syms;
  thread_local std::vector<Bigram> tls_heap;
  thread_local std::vector<uint64_t> tls_hashes;
  std::vector<Symbol>& syms = tls_syms;
  std::vector<Bigram>& heap = tls_heap;
  std::vector<uint64_t>& hashes = tls_hashes;
  syms.clear();
  heap.clear();
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(text[i])), text.size() - i);
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back(
        {static_cast<uint32_t>(i), static_cast<uint32_t>(len), idx - 1, idx + 1, kNoToken});
    i += len;
  }
  syms.back().next = -1;
  const StringIndex& index = vocab_->index;

  // Two neighbours merge when their joined text is a token; the best-scored pair goes first.
  auto joined = [&](int32_t left) {
    const Symbol& l = syms[left];
    return text.substr(l.pos, l.len + syms[l.next].len);
  };
  auto try_add = [&](int32_t left, uint64_t hash) {
    const std::string_view j = joined(left);
    const TokenId t = index.find(j, hash);
    if (t < 0) return;
    heap.push_back({vocab_->scores[t], left, syms[left].next, static_cast<uint32_t>(j.size()), t});
    std::push_heap(heap.begin(), heap.end(), BigramAfter());
  };
  auto hash_of = [&](int32_t left) {
    const std::string_view j = joined(left);
    const uint64_t h = StringIndex::hash(j);
    index.prefetch(h);
    return h;
  };

  // Seed with every adjacent pair, hashing (and prefetching) all before looking any up.
  hashes.resize(syms.size());
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) hashes[i] = hash_of(i);
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) {
    const std::string_view j = joined(i);
    const TokenId t = index.find(j, hashes[i]);
    if (t >= 0) heap.push_back({vocab_->scores[t], i, i + 1, static_cast<uint32_t>(j.size()), t});
  }
  std::make_heap(heap.begin(), heap.end(), BigramAfter());  // linear, where n pushes are n log n

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramAfter());
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = syms[b.left];
    Symbol& r = syms[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
    l.len += r.len;
    l.token = b.token;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = b.left;
    const uint64_t h_prev = l.prev >= 0 ? hash_of(l.prev) : 0;
    const uint64_t h_next = l.next >= 0 ? hash_of(b.left) : 0;
    if (l.prev >= 0) try_add(l.prev, h_prev);
    if (l.next >= 0) try_add(b.left, h_next);
  }

  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const Symbol& s = syms[i];
    const std::string_view piece = text.substr(s.pos, s.len);
    const TokenId t = s.token != kNoToken ? s.token : index.find(piece);
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
