#include "text/bpe.h"

#include <algorithm>

#include "text/unicode.h"

namespace minnow::text {
namespace {

// A candidate merge of a symbol and its right neighbour. Lowest rank first, then leftmost, as
// llama.cpp: both in one integer key.
struct Bigram {
  uint64_t key;    // rank << 32 | left symbol
  uint32_t size;   // bytes of the pair when queued; texts only grow, so a mismatch means stale
  int32_t result;  // symbol id of the merged string

  int32_t left() const { return static_cast<int32_t>(key & 0xFFFFFFFFu); }
};

struct BigramAfter {
  bool operator()(const Bigram& a, const Bigram& b) const { return a.key > b.key; }
};

uint64_t bigram_key(int32_t rank, int32_t left) {
  return (uint64_t(uint32_t(rank)) << 32) | uint32_t(left);
}

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

void byte_fallback_name(uint8_t b, char buf[6]) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  buf[0] = '<';
  buf[1] = '0';
  buf[2] = 'x';
  buf[3] = kHex[b >> 4];
  buf[4] = kHex[b & 15];
  buf[5] = '>';
}

// Length of the non-ASCII white space (Unicode White_Space) or encoded surrogate at `p`, or 0.
size_t special_char_len(const uint8_t* p, size_t n) {
  if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) return 2;
  if (n < 3) return 0;
  if (p[0] == 0xED && p[1] >= 0xA0) return 3;                  // surrogate
  if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;  // U+1680
  if (p[0] == 0xE2 && p[1] == 0x80 &&
      (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) {
    return 3;  // U+2000..U+200A, U+2028, U+2029, U+202F
  }
  if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;  // U+205F
  if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;  // U+3000
  return 0;
}

bool needs_stand_ins(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  for (size_t i = 0; i < text.size(); ++i) {
    if (p[i] >= 0xC2 && p[i] <= 0xED && special_char_len(p + i, text.size() - i)) return true;
  }
  return false;
}

void write_stand_ins(std::string& text) {
  auto* p = reinterpret_cast<uint8_t*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const size_t len = special_char_len(p + i, text.size() - i);
    if (len == 2) {
      p[i + 1] = 0x85;  // U+0085
    } else if (len == 3 && p[i] == 0xED) {
      p[i] = 0xEE, p[i + 1] = 0x80, p[i + 2] = 0x80;  // U+E000
    } else if (len == 3) {
      p[i] = 0xE1, p[i + 1] = 0x9A, p[i + 2] = 0x80;  // U+1680
    }
    i += len ? len : 1;
  }
}

}  // namespace

int32_t BpeEncoder::find_symbol(std::string_view s) const {
  const TokenId t = vocab_->find(s);
  if (t >= 0) return t;
  const int32_t e = extra_.find(s);
  return e >= 0 ? static_cast<int32_t>(vocab_->size()) + e : -1;
}

int32_t BpeEncoder::intern(std::string_view s) {
  const int32_t id = find_symbol(s);
  if (id >= 0) return id;
  extra_text_.emplace_back(s);
  return static_cast<int32_t>(vocab_->size()) + extra_.add(extra_text_.back());
}

Status BpeEncoder::init(const Vocab& vocab, const gguf::Value& merges,
                        const PreTokenizerInfo& info) {
  vocab_ = &vocab;
  info_ = info;
  auto splitter = RegexSplitter::create(info.patterns);
  if (!splitter) return splitter.status();
  splitter_ = std::move(*splitter);

  merges_.reserve(merges.strings.size());
  std::string joined;
  for (size_t i = 0; i < merges.strings.size(); ++i) {
    const std::string_view m = merges.strings[i];
    const size_t space = m.find(' ', 1);
    if (space == std::string_view::npos) continue;  // malformed entries can never apply
    const std::string_view first = m.substr(0, space);
    const std::string_view second = m.substr(space + 1);
    const int32_t l = intern(first);
    const int32_t r = intern(second);
    joined.assign(first);
    joined.append(second);
    const int32_t result = intern(joined);
    merges_.insert(l, r, {static_cast<int32_t>(i), result});
  }

  const ByteAlphabet& alphabet = ByteAlphabet::get();
  std::string ch;
  for (int b = 0; b < 256; ++b) {
    ch.clear();
    append_utf8(alphabet.to_cp[b], ch);
    byte_symbol_[b] = find_symbol(ch);
  }

  if (info.ignore_merges && info.byte_encode) {
    // Decode every token out of the byte alphabet; tokens with other characters can never
    // equal an encoded word and are left out.
    std::vector<std::pair<uint32_t, uint32_t>> spans;  // (offset, length) in raw_arena_
    std::vector<TokenId> ids;
    for (size_t id = 0; id < vocab.size(); ++id) {
      const std::string_view text = vocab.text(static_cast<TokenId>(id));
      const size_t start = raw_arena_.size();
      bool ok = true;
      for (size_t i = 0; i < text.size() && ok;) {
        const auto lead = static_cast<uint8_t>(text[i]);
        const size_t len = utf8_seq_len(lead);
        if (i + len > text.size()) {
          ok = false;
          break;
        }
        const int byte = alphabet.byte_of(utf8_bits(text, i, len));
        if (byte < 0)
          ok = false;
        else
          raw_arena_.push_back(static_cast<char>(byte));
        i += len;
      }
      if (!ok) {
        raw_arena_.resize(start);
        continue;
      }
      spans.emplace_back(static_cast<uint32_t>(start),
                         static_cast<uint32_t>(raw_arena_.size() - start));
      ids.push_back(static_cast<TokenId>(id));
    }
    raw_tokens_.reserve(spans.size());
    for (size_t k = 0; k < spans.size(); ++k) {
      bool added = false;
      raw_tokens_.add(std::string_view(raw_arena_).substr(spans[k].first, spans[k].second), &added);
      if (added) raw_token_ids_.push_back(ids[k]);
    }
  }
  return {};
}

void BpeEncoder::emit_unknown(std::string_view text, std::vector<TokenId>& out) const {
  // A symbol that is no token: llama.cpp looks up each byte of its (encoded) text on its own.
  if (info_.byte_encode) {
    const ByteAlphabet& alphabet = ByteAlphabet::get();
    std::string encoded;
    for (char c : text) append_utf8(alphabet.to_cp[static_cast<uint8_t>(c)], encoded);
    for (char c : encoded) {
      const TokenId t = vocab_->find(std::string_view(&c, 1));
      if (t >= 0) out.push_back(t);
    }
  } else {
    char name[6];
    for (char c : text) {
      byte_fallback_name(static_cast<uint8_t>(c), name);
      const TokenId t = vocab_->find(std::string_view(name, 6));
      if (t >= 0) out.push_back(t);
    }
  }
}

void BpeEncoder::encode_word(std::string_view word, std::vector<Symbol>& syms,
                             std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (info_.ignore_merges) {
    TokenId t = kNoToken;
    if (info_.byte_encode) {
      const int32_t k = raw_tokens_.find(word);
      if (k >= 0) t = raw_token_ids_[k];
    } else {
      t = vocab_->find(word);
    }
    if (t >= 0) {
      out.push_back(t);
      return;
    }
  } else if (info_.newline_words && word.find_first_not_of('\n') == std::string_view::npos) {
    const TokenId t = vocab_->find(word);
    if (t >= 0) {
      out.push_back(t);
      return;
    }
  }

  syms.clear();
  if (info_.byte_encode) {
    syms.resize(word.size());
    for (size_t i = 0; i < word.size(); ++i) {
      syms[i] = {byte_symbol_[static_cast<uint8_t>(word[i])], static_cast<uint32_t>(i), 1,
                 static_cast<int32_t>(i) - 1, static_cast<int32_t>(i) + 1};
    }
  } else {
    for (size_t i = 0; i < word.size();) {
      const size_t len = std::min(utf8_seq_len(static_cast<uint8_t>(word[i])), word.size() - i);
      const auto idx = static_cast<int32_t>(syms.size());
      syms.push_back({find_symbol(word.substr(i, len)), static_cast<uint32_t>(i),
                      static_cast<uint32_t>(len), idx - 1, idx + 1});
      i += len;
    }
  }
  syms.back().next = -1;

  // Scratch kept per thread; a plain reference so the loop does not go through TLS each time.
  thread_local std::vector<Bigram> tls_heap;
  std::vector<Bigram>& heap = tls_heap;
  heap.clear();
  auto bigram = [&](int32_t left, Bigram* b) {
    const Symbol& l = syms[left];
    const Symbol& r = syms[l.next];
    if (l.id < 0 || r.id < 0) return false;
    const PairMap::Value* m = merges_.find(l.id, r.id);
    if (!m) return false;
    *b = {bigram_key(m->rank, left), l.len + r.len, m->result};
    return true;
  };
  // Seed with every adjacent pair (prefetching their slots first so the cache misses overlap);
  // one heapify is linear where n pushes are n log n.
  for (size_t i = 0; i + 1 < syms.size(); ++i) merges_.prefetch(syms[i].id, syms[i + 1].id);
  Bigram b;
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(syms.size()); ++i) {
    if (bigram(i, &b)) heap.push_back(b);
  }
  std::make_heap(heap.begin(), heap.end(), BigramAfter());

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramAfter());
    const Bigram top = heap.back();
    heap.pop_back();
    const int32_t left = top.left();
    Symbol& l = syms[left];
    if (l.len == 0 || l.next < 0) continue;
    Symbol& r = syms[l.next];
    if (l.len + r.len != top.size) continue;
    l.id = top.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = left;
    for (int32_t pair_left : {l.prev, l.next >= 0 ? left : -1}) {
      if (pair_left >= 0 && bigram(pair_left, &b)) {
        heap.push_back(b);
        std::push_heap(heap.begin(), heap.end(), BigramAfter());
      }
    }
  }

  const auto n_vocab = static_cast<int32_t>(vocab_->size());
  for (int32_t i = 0; i != -1; i = syms[i].next) {
    const Symbol& s = syms[i];
    if (s.id >= 0 && s.id < n_vocab) {
      out.push_back(s.id);
    } else {
      emit_unknown(word.substr(s.pos, s.len), out);
    }
  }
}

Status BpeEncoder::encode(std::string_view fragment, std::vector<TokenId>& out,
                          WordCache* cache) const {
  std::string escaped;
  std::string_view text = fragment;
  if (info_.escape_whitespace) {
    escaped.reserve(fragment.size() + 16);
    for (char c : fragment) {
      if (c == ' ')
        escaped += kSpaceMark;
      else
        escaped += c;
    }
    text = escaped;
  }
  // The pre-tokenizer reads code points: malformed input is rewritten as llama.cpp reads it.
  std::string canonical;
  if (canonicalize_utf8(text, canonical)) text = canonical;
  // The text the patterns see. llama.cpp's engines see every non-ASCII white space as the
  // same character (one that no pattern spells out literally, so deepseek-llm's range U+3000..
  // U+3002 does not take U+3000), and PCRE2 refuses encoded surrogates. Both get same-length
  // stand-ins: U+0085 / U+1680 for white space, private-use U+E000 for a surrogate (both
  // sides are "other" characters to every pattern). Words keep the original bytes.
  std::string stand_in;
  std::string_view match_text = text;
  if (needs_stand_ins(text)) {
    stand_in.assign(text);
    write_stand_ins(stand_in);
    match_text = stand_in;
  }

  thread_local std::vector<RegexSplitter::Piece> tls_pieces;
  thread_local std::vector<Symbol> tls_syms;
  std::vector<RegexSplitter::Piece>& pieces = tls_pieces;
  std::vector<Symbol>& syms = tls_syms;
  MINNOW_RETURN_IF_ERROR(splitter_->split(match_text, pieces));
  for (const RegexSplitter::Piece& p : pieces) {
    const std::string_view word = text.substr(p.offset, p.length);
    const bool cacheable = cache && word.size() <= WordCache::kMaxWordBytes;
    if (cacheable && cache->lookup(word, out)) continue;
    const size_t before = out.size();
    encode_word(word, syms, out);
    if (cacheable) cache->insert(word, out.data() + before, out.size() - before);
  }
  return {};
}

}  // namespace minnow::text
