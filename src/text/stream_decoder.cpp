#include "text/stream_decoder.h"

#include <optional>

#include "text/unicode.h"

namespace minnow::text {
namespace {

// Each pass below is clean_up_spaces' pass of the same number, fed one character at a time.
// A pass only ever retracts the last character it wrote, and only when that is a space, so a
// written space is held until the next character is written; an apostrophe that may trigger a
// rule is held until enough look-ahead has arrived.

class Writer {
 public:
  void write(char c, std::string& out) {
    flush(out);
    if (c == ' ')
      held_ = true;
    else
      out += c;
  }
  void retract() { held_ = false; }  // drops the held space
  void flush(std::string& out) {
    if (held_) out += ' ';
    held_ = false;
  }

 private:
  bool held_ = false;
};

// " ?", " !", " .", " ," lose the space.
class Pass1 {
 public:
  void push(char x, std::string& out) {
    if (x == '?' || x == '!' || x == '.' || x == ',') w_.retract();
    w_.write(x, out);
  }
  void finish(std::string& out) { w_.flush(out); }

 private:
  Writer w_;
};

// " ' " becomes "'"; the space after it is consumed and cannot start another match.
class Pass2 {
 public:
  void push(char x, std::string& out) {
    if (waiting_) {
      waiting_ = false;
      if (x == ' ') {
        w_.retract();
        w_.write('\'', out);
        prev_ = '\0';
        ++i_;
        return;
      }
      w_.write('\'', out);
      prev_ = '\'';
    }
    if (i_ >= 1 && x == '\'' && prev_ == ' ') {
      waiting_ = true;
    } else {
      w_.write(x, out);
      prev_ = x;
    }
    ++i_;
  }
  void finish(std::string& out) {
    if (waiting_) w_.write('\'', out);
    waiting_ = false;
    w_.flush(out);
  }

 private:
  Writer w_;
  size_t i_ = 0;
  char prev_ = '\0';
  bool waiting_ = false;
};

// " 's", " 'm", " 're", " 've" lose the space (" 't", " 'd", " 'll" keep it).
class Pass3 {
 public:
  void push(char x, std::string& out) {
    if (look_.empty()) {
      process(x, out);
      return;
    }
    look_ += x;
    const char x1 = look_[1];
    if (look_.size() == 2) {
      if (x1 == 's' || x1 == 'm')
        decide(true, out);
      else if (x1 == 't' || x1 == 'd')
        decide(false, out);
      // else: wait for the second character
    } else {
      decide((x1 == 'r' || x1 == 'v') && look_[2] == 'e', out);
    }
  }
  void finish(std::string& out) {
    while (!look_.empty()) decide(false, out);  // the text ended before the rule could apply
    w_.flush(out);
  }

 private:
  void process(char x, std::string& out) {
    if (i_ >= 1 && x == '\'' && prev_ == ' ') {
      look_.assign(1, '\'');
    } else {
      w_.write(x, out);
    }
    prev_ = x;
    ++i_;
  }
  void decide(bool retract, std::string& out) {
    const std::string rest = look_.substr(1);
    look_.clear();
    if (retract) w_.retract();
    w_.write('\'', out);
    for (char c : rest) push(c, out);
  }

  Writer w_;
  size_t i_ = 0;
  char prev_ = '\0';
  std::string look_;  // a held apostrophe and the look-ahead after it
};

}  // namespace

class StreamDecoder::CleanSpaces {
 public:
  void push(std::string_view in, std::string& out, bool final) {
    std::string a, b;
    for (char c : in) p1_.push(c, a);
    if (final) p1_.finish(a);
    for (char c : a) p2_.push(c, b);
    if (final) p2_.finish(b);
    for (char c : b) p3_.push(c, out);
    if (final) p3_.finish(out);
  }

 private:
  Pass1 p1_;
  Pass2 p2_;
  Pass3 p3_;
};

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, StreamOptions options)
    : tok_(tokenizer), opts_(std::move(options)), strip_space_(tokenizer.add_space_prefix()) {
  if (tok_.clean_spaces()) clean_ = std::make_unique<CleanSpaces>();
  std::erase_if(opts_.stop, [](const std::string& s) { return s.empty(); });
}

StreamDecoder::~StreamDecoder() = default;

std::string StreamDecoder::push(TokenId id) {
  std::string out;
  if (stopped_) return out;
  if (first_) {
    first_ = false;
    if (tok_.add_bos() && id == tok_.special().bos) {  // as detokenize with remove_special
      strip_space_ = false;
      return out;
    }
  }
  std::string_view p = tok_.piece(id, opts_.special);
  if (strip_space_ && !p.empty() && p.front() == ' ') p.remove_prefix(1);
  strip_space_ = false;
  feed(p, out, false);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  if (stopped_) return out;
  feed({}, out, true);
  return out;
}

void StreamDecoder::feed(std::string_view bytes, std::string& out, bool final) {
  if (clean_) {
    clean_->push(bytes, utf8_pending_, final);
  } else {
    utf8_pending_.append(bytes);
  }
  const size_t keep = final ? 0 : incomplete_utf8_suffix(utf8_pending_);
  const size_t ready = utf8_pending_.size() - keep;
  std::string valid;
  append_valid_utf8(std::string_view(utf8_pending_).substr(0, ready), valid);
  utf8_pending_.erase(0, ready);
  release(valid, out, final);
}

void StreamDecoder::release(std::string_view text, std::string& out, bool final) {
  if (opts_.stop.empty()) {
    out.append(text);
    return;
  }
  stop_pending_.append(text);
  size_t best = std::string::npos;
  const std::string* which = nullptr;
  for (const std::string& s : opts_.stop) {
    const size_t pos = stop_pending_.find(s);
    if (pos < best) {
      best = pos;
      which = &s;
    }
  }
  if (which) {
    out.append(stop_pending_, 0, best);
    stop_pending_.clear();
    stopped_ = true;
    stop_found_ = *which;
    return;
  }
  size_t hold = 0;
  if (!final) {
    // The longest tail that is the start of a stop string.
    for (const std::string& s : opts_.stop) {
      for (size_t k = std::min(s.size() - 1, stop_pending_.size()); k > hold; --k) {
        if (stop_pending_.compare(stop_pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
      }
    }
  }
  out.append(stop_pending_, 0, stop_pending_.size() - hold);
  stop_pending_.erase(0, stop_pending_.size() - hold);
}

}  // namespace minnow::text
