// The pretokenize pipeline: reader -> bounded queue -> tokenizer threads -> in-order writer.
#include "dtune/data/pretokenizer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "dtune/core/cpus.h"
#include "dtune/core/sha256.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/data/chat_tokenizer.h"
#include "dtune/data/hdf5_writer.h"
#include "dtune/data/row_source.h"
#include <filesystem>
#include "dtune/tokenizer/tokenizer.h"

namespace dtune {

AddBos parse_add_bos(const std::string& value) {
  if (value == "auto") return AddBos::kAuto;
  if (value == "yes") return AddBos::kYes;
  if (value == "no") return AddBos::kNo;
  throw Error(str("--add-bos: expected auto, yes or no, got '", value, "'"));
}

const char* add_bos_name(AddBos value) {
  switch (value) {
    case AddBos::kYes: return "yes";
    case AddBos::kNo: return "no";
    default: return "auto";
  }
}

void PretokenizeOptions::validate() const {
  DTUNE_CHECK(!tokenizer_path.empty(), "--tokenizer is required (a tokenizer.json or its folder)");
  DTUNE_CHECK(!input_path.empty() || !inputs.empty(),
              "--input is required (a JSON/JSONL file, .gz/.zst, Parquet, Arrow, or a datasets folder)");
  for (const InputSource& s : sources()) {
    DTUNE_CHECK(s.weight > 0, "--input ", s.path, ": the weight must be > 0, got ", s.weight);
    DTUNE_CHECK(s.path != output_path, "--output must differ from --input");
  }
  DTUNE_CHECK(!output_path.empty(), "--output is required (the .h5 file to write)");
  DTUNE_CHECK(encode == "split" || encode == "joint", "--encode must be split or joint, got '", encode, "'");
  DTUNE_CHECK(max_length >= 2, "--max-length must be >= 2, got ", max_length);
  DTUNE_CHECK(max_length <= (int64_t{1} << 30), "--max-length ", max_length, " is too large");
  DTUNE_CHECK(eval_fraction >= 0 && eval_fraction < 1, "--eval-fraction must be in [0, 1), got ",
              eval_fraction);
  DTUNE_CHECK(threads >= 0 && threads <= 1024, "--threads must be in [0, 1024], got ", threads);
  DTUNE_CHECK(rows_per_batch >= 1, "internal: rows_per_batch must be >= 1");
  DTUNE_CHECK(input_path != output_path, "--output must differ from --input");
}

RowTokenizer::RowTokenizer(const Tokenizer& tokenizer, const PromptTemplate& tmpl, AddBos add_bos,
                           int64_t max_length)
    : tokenizer_(tokenizer), template_(&tmpl), add_bos_(add_bos), max_length_(max_length) {
  bos_ = tokenizer.bos_id().value_or(-1);
  eos_ = tokenizer.eos_id().value_or(-1);
  DTUNE_CHECK(eos_ >= 0, tokenizer.path(), ": the tokenizer has no EOS token (eos_token in ",
              "tokenizer_config.json); every row ends with EOS, so add it there");
  DTUNE_CHECK(add_bos != AddBos::kYes || bos_ >= 0, "--add-bos yes: ", tokenizer.path(),
              " has no BOS token (bos_token in tokenizer_config.json); use --add-bos auto or no");
}

RowTokenizer::RowTokenizer(const Tokenizer& tokenizer, const ChatTemplate& chat, bool train_all,
                           int64_t max_length)
    : chat_(&chat), train_all_(train_all), tokenizer_(tokenizer), add_bos_(AddBos::kNo), max_length_(max_length) {
  bos_ = tokenizer.bos_id().value_or(-1);
  eos_ = tokenizer.eos_id().value_or(-1);
}

void RowTokenizer::tokenize(const Row& row, TokenizedRow& out) const {
  if (chat_ == nullptr) {
    tokenize(row.values, out);
    return;
  }
  const RenderedChat rendered = chat_->render(row.messages, row.first_trained);
  tokenize_chat(tokenizer_, rendered, out.ids, out.loss_mask);
  out.dropped_reasoning_turns = rendered.dropped_reasoning_turns;
  if (train_all_) std::fill(out.loss_mask.begin(), out.loss_mask.end(), int8_t{1});
  out.truncated = static_cast<int64_t>(out.ids.size()) > max_length_;
  if (out.truncated) {
    out.ids.resize(static_cast<size_t>(max_length_));
    out.loss_mask.resize(static_cast<size_t>(max_length_));
  }
  // The first id is never a label (nothing precedes it), so a row needs a 1 after it.
  const auto first = std::find(out.loss_mask.begin() + (out.loss_mask.empty() ? 0 : 1), out.loss_mask.end(), int8_t{1});
  const bool any = first != out.loss_mask.end();
  out.prompt_length = any ? static_cast<int32_t>(std::find(out.loss_mask.begin(), out.loss_mask.end(), int8_t{1}) -
                                                 out.loss_mask.begin())
                          : static_cast<int32_t>(out.ids.size());
}

void RowTokenizer::tokenize(const std::vector<std::string>& values, TokenizedRow& out) const {
  DTUNE_CHECK(template_ != nullptr, "internal: RowTokenizer for conversations given template values");
  out.loss_mask.clear();
  std::string prompt, completion;
  template_->render(values, prompt, completion);
  size_t prompt_len = 0;  // leading ids that take no loss (with completion_only_loss)
  if (!joint_) {
    out.ids = tokenizer_.encode(prompt, add_bos_ != AddBos::kNo);
  } else {
    // One text, as tokenizer(prompt + completion); the prompt is every leading token whose
    // bytes (offsets) lie inside it, the special tokens the post-processor put in front included.
    const std::string text = prompt + completion;
    const std::vector<int32_t> plain = tokenizer_.encode(text, false);
    out.ids = add_bos_ != AddBos::kNo ? tokenizer_.encode(text, true) : plain;
    size_t lead = 0;  // ids the post-processor added before the text's own
    while (lead + plain.size() <= out.ids.size() &&
           !std::equal(plain.begin(), plain.end(), out.ids.begin() + static_cast<std::ptrdiff_t>(lead)))
      ++lead;
    DTUNE_CHECK(lead + plain.size() <= out.ids.size(), tokenizer_.path(),
                ": the post-processor rewrites the text's ids, so --encode joint cannot find the prompt in them; "
                "use --encode split");
    size_t offset = 0, inside = 0;
    for (int32_t id : plain) {
      offset += tokenizer_.token_bytes(id).size();
      if (offset <= prompt.size()) ++inside;
    }
    DTUNE_CHECK(offset == text.size(), tokenizer_.path(), ": the tokens of a row cover ", offset, " bytes of its ",
                text.size(), " (the tokenizer's normalizer rewrites the text), so --encode joint cannot place the ",
                "prompt mask; use --encode split");
    prompt_len = lead + inside;
  }
  if (add_bos_ != AddBos::kNo && bos_ >= 0 && out.ids.size() >= 2 && out.ids[0] == bos_ &&
      out.ids[1] == bos_) {
    out.ids.erase(out.ids.begin());  // template text already began with BOS
    if (prompt_len > 0) --prompt_len;
  }
  if (add_bos_ == AddBos::kYes && (out.ids.empty() || out.ids[0] != bos_)) {
    out.ids.insert(out.ids.begin(), bos_);
    ++prompt_len;
  }
  if (!joint_) {
    prompt_len = out.ids.size();
    const std::vector<int32_t> completion_ids = tokenizer_.encode(completion, false);
    out.ids.insert(out.ids.end(), completion_ids.begin(), completion_ids.end());
  }
  out.ids.push_back(eos_);
  out.truncated = static_cast<int64_t>(out.ids.size()) > max_length_;
  if (out.truncated) out.ids.resize(static_cast<size_t>(max_length_));
  out.prompt_length = train_all_ ? 0 : static_cast<int32_t>(std::min(prompt_len, out.ids.size()));
}

bool is_eval_row(int64_t row_number, uint64_t seed, double eval_fraction) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(row_number) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return u < eval_fraction;
}

namespace {

struct WorkItem {
  int64_t seq = 0;
  std::vector<Row> rows;
  std::vector<TokenizedRow> out;
};

// Shared state of the pipeline. Memory bound: at most max_in_flight items exist between the
// reader taking them and the writer finishing them.
struct Pipeline {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WorkItem> todo;           // read, not yet tokenized
  std::map<int64_t, WorkItem> done;    // tokenized, waiting for their turn to be written
  int64_t in_flight = 0;
  int64_t max_in_flight = 0;
  bool input_done = false;
  int64_t total_items = 0;             // valid once input_done
  bool failed = false;
  std::exception_ptr error;

  void fail(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!failed) error = e;
    failed = true;
    cv.notify_all();
  }
};

void run_worker(Pipeline& p, const RowTokenizer& row_tokenizer) {
  try {
    for (;;) {
      WorkItem item;
      {
        std::unique_lock<std::mutex> lock(p.mu);
        p.cv.wait(lock, [&] { return p.failed || !p.todo.empty() || p.input_done; });
        if (p.failed || (p.todo.empty() && p.input_done)) return;
        item = std::move(p.todo.front());
        p.todo.pop_front();
      }
      item.out.resize(item.rows.size());
      for (size_t i = 0; i < item.rows.size(); ++i) {
        row_tokenizer.tokenize(item.rows[i], item.out[i]);
      }
      std::lock_guard<std::mutex> lock(p.mu);
      const int64_t seq = item.seq;
      p.done.emplace(seq, std::move(item));
      p.cv.notify_all();
    }
  } catch (...) {
    p.fail(std::current_exception());
  }
}

// Progress on stderr: a redrawn bar on a terminal, a plain line every 10 s otherwise.
class Progress {
 public:
  Progress(bool enabled, int64_t total_bytes)
      : enabled_(enabled), tty_(log::stderr_is_tty()), total_bytes_(total_bytes),
        start_(Clock::now()), last_(start_) {}

  void update(int64_t rows, int64_t bytes, bool final) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    if (!final && since_last < (tty_ ? 0.25 : 10.0)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double frac = total_bytes_ > 0 ? std::min(1.0, double(bytes) / double(total_bytes_)) : 1;
    const double rate = secs > 0 ? double(rows) / secs : 0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(frac * kWidth);
      std::fprintf(stderr, "\r[%.*s%*s] %3d%% %lld rows %.0f rows/s", filled,
                   "##############################", kWidth - filled, "",
                   static_cast<int>(frac * 100), static_cast<long long>(rows), rate);
      if (final) std::fputc('\n', stderr);
      std::fflush(stderr);
    } else if (!final) {
      log::info(str("pretokenize: ", static_cast<int>(frac * 100), "% of input, ", rows,
                    " rows, ", static_cast<int64_t>(rate), " rows/s"));
    }
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool tty_;
  int64_t total_bytes_;
  Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace

PretokenizeStats pretokenize(const PretokenizeOptions& options) {
  options.validate();
  const auto t0 = std::chrono::steady_clock::now();
  const PromptTemplate tmpl = options.template_file.empty()
                                  ? PromptTemplate::preset(options.template_name)
                                  : PromptTemplate::load_file(options.template_file);
  const std::vector<InputSource> inputs = options.sources();
  RowFormat format = options.format;
  if (format == RowFormat::kAuto) {
    const bool given = options.template_given || !options.template_file.empty();
    for (const InputSource& in : inputs) {  // every input must be of the first one's format
      const RowFormat f = given ? RowFormat::kTemplate
                                : detect_row_format(first_row_fields(in.path), tmpl.fields(), in.path);
      DTUNE_CHECK(format == RowFormat::kAuto || f == format, in.path, ": its rows are ", row_format_name(f),
                  " rows but ", inputs.front().path, "'s are ", row_format_name(format),
                  "; one run takes inputs of one format (pass --format to say which)");
      format = f;
    }
  }
  const Tokenizer tokenizer = Tokenizer::load(options.tokenizer_path);
  std::optional<ChatTemplate> chat;
  bool train_all = false;
  if (is_conversational(format)) {
    DTUNE_CHECK(!options.template_given && options.template_file.empty(), "--template/--template-file apply to --format template; ",
                row_format_name(format), " rows are rendered with the model's chat template (--chat-template)");
    std::string chat_path = options.chat_template_path;
    if (chat_path.empty()) {
      std::error_code ec;
      chat_path = std::filesystem::is_directory(options.tokenizer_path, ec)
                      ? options.tokenizer_path
                      : std::filesystem::path(options.tokenizer_path).parent_path().string();
      if (chat_path.empty()) chat_path = ".";
    }
    chat.emplace(ChatTemplate::load(chat_path));
    train_all = format == RowFormat::kPromptCompletion ? !options.completion_only_loss : !options.assistant_only_loss;
  }
  std::optional<RowTokenizer> row_tokenizer_storage;
  if (chat) row_tokenizer_storage.emplace(tokenizer, *chat, train_all, options.max_length);
  else row_tokenizer_storage.emplace(tokenizer, tmpl, options.add_bos, options.max_length);
  RowTokenizer& row_tokenizer = *row_tokenizer_storage;
  if (!chat) row_tokenizer.set_train_all(!options.completion_only_loss);
  row_tokenizer.set_joint(options.encode == "joint");
  RowReaderOptions reader_options{chat ? std::vector<std::string>{} : tmpl.fields(), options.skip_bad_rows};
  reader_options.format = format;
  std::vector<std::unique_ptr<RowSource>> readers;  // opened up front: a bad input fails at once
  int64_t total_bytes = 0;
  for (const InputSource& in : inputs) {
    readers.push_back(open_row_source(in.path, reader_options));
    total_bytes += readers.back()->file_size();
  }
  Hdf5Writer writer(options.output_path);  // removes its temp file unless finish() runs

  const int threads = options.threads > 0
                          ? options.threads
                          : affinity_cpu_count();
  Pipeline p;
  p.max_in_flight = options.max_batches_in_flight > 0 ? options.max_batches_in_flight : 4 * threads;
  PretokenizeStats stats;
  for (const InputSource& in : inputs) stats.sources.push_back({in.path, in.weight});
  std::atomic<int64_t> bytes_read{0};

  // Writer: the only thread touching HDF5 (the library is built without thread safety).
  auto write_all = [&] {
    try {
      Progress progress(options.show_progress, total_bytes);
      for (int64_t next = 0;; ++next) {
        WorkItem item;
        {
          std::unique_lock<std::mutex> lock(p.mu);
          p.cv.wait(lock, [&] {
            return p.failed || p.done.count(next) > 0 || (p.input_done && next == p.total_items);
          });
          if (p.failed) return;
          if (p.done.count(next) == 0) break;  // all items written
          item = std::move(p.done.at(next));
          p.done.erase(next);
        }
        for (size_t i = 0; i < item.rows.size(); ++i) {
          const TokenizedRow& row = item.out[i];
          const Row& in = item.rows[i];
          SourceStats& src = stats.sources[static_cast<size_t>(in.source)];
          ++src.rows;
          stats.truncated_rows += row.truncated ? 1 : 0;
          stats.dropped_reasoning_turns += row.dropped_reasoning_turns;
          if (row.prompt_length >= static_cast<int32_t>(row.ids.size())) {
            ++stats.dropped_rows;  // no completion token survived truncation
            continue;
          }
          const int64_t copies = row_copies(src.weight, in.number, options.seed, in.source);
          const bool eval = is_eval_row(in.number, source_split_seed(options.seed, in.source), options.eval_fraction);
          const int64_t n = eval ? std::min<int64_t>(copies, 1) : copies;  // eval rows are not repeated
          for (int64_t c = 0; c < n; ++c) {
            writer.append(eval, row.ids, row.prompt_length, row.loss_mask, in.source);
            stats.tokens += static_cast<int64_t>(row.ids.size());
            src.tokens += static_cast<int64_t>(row.ids.size());
            ++(eval ? src.eval_rows : src.train_rows);
          }
        }
        {
          std::lock_guard<std::mutex> lock(p.mu);
          --p.in_flight;
          p.cv.notify_all();
        }
        progress.update(writer.num_rows(false) + writer.num_rows(true), bytes_read.load(), false);
      }
      progress.update(writer.num_rows(false) + writer.num_rows(true), bytes_read.load(), true);
    } catch (...) {
      p.fail(std::current_exception());
    }
  };

  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(run_worker, std::ref(p), std::cref(row_tokenizer));
  std::thread writer_thread(write_all);

  try {  // this thread reads
    int64_t seq = 0;
    int64_t done_bytes = 0;  // of the inputs already read
    bool stop = false;
    for (size_t s = 0; s < readers.size() && !stop; ++s) {  // inputs one after the other
      RowSource& reader = *readers[s];
      bool more = true;
      while (more) {
        WorkItem item;
        item.seq = seq;
        item.rows.resize(static_cast<size_t>(options.rows_per_batch));
        size_t n = 0;
        while (n < item.rows.size() && (more = reader.next(item.rows[n]))) item.rows[n++].source = static_cast<int>(s);
        bytes_read.store(done_bytes + reader.bytes_read());
        if (n == 0) break;
        item.rows.resize(n);
        std::unique_lock<std::mutex> lock(p.mu);
        p.cv.wait(lock, [&] { return p.failed || p.in_flight < p.max_in_flight; });
        if (p.failed) {
          stop = true;
          break;
        }
        ++p.in_flight;
        p.todo.push_back(std::move(item));
        ++seq;
        p.cv.notify_all();
      }
      done_bytes += reader.file_size();
    }
    std::lock_guard<std::mutex> lock(p.mu);
    p.input_done = true;
    p.total_items = seq;
    p.cv.notify_all();
  } catch (...) {
    p.fail(std::current_exception());
  }
  for (std::thread& t : pool) t.join();
  writer_thread.join();
  if (p.error) std::rethrow_exception(p.error);

  const int64_t written = writer.num_rows(false) + writer.num_rows(true);
  int64_t skipped = 0;
  for (size_t s = 0; s < readers.size(); ++s) {
    stats.sources[s].skipped = readers[s]->skipped_rows();
    skipped += stats.sources[s].skipped;
  }
  DTUNE_CHECK(written > 0, inputs.front().path, inputs.size() > 1 ? " (and the other inputs)" : "",
              ": no usable rows (", skipped,
              " skipped, ", stats.dropped_rows, " dropped because the prompt alone reached ",
              "--max-length); nothing written to ", options.output_path);
  stats.train_rows = writer.num_rows(false);
  stats.eval_rows = writer.num_rows(true);
  stats.rows_written = written;
  stats.skipped_rows = skipped;

  PretokenizedInfo info;
  info.dtune_version = DTUNE_VERSION;
  info.tokenizer_path = tokenizer.path();
  info.tokenizer_sha256 = tokenizer.sha256();
  info.vocab_size = tokenizer.vocab_size();
  info.bos_id = tokenizer.bos_id().value_or(-1);
  info.eos_id = tokenizer.eos_id().value_or(-1);
  info.pad_id = tokenizer.pad_id().value_or(-1);
  if (chat) {
    info.template_name = str("chat template: ", chat->name());
    info.template_text = str(row_format_name(format), " rows rendered with the chat_template of ", chat->source(),
                             " (sha256 ", chat->sha256(), "); loss on ",
                             train_all ? "every token" : format == RowFormat::kPromptCompletion
                                                             ? "the completion's assistant turns"
                                                             : "every assistant turn");
  } else {
    info.template_name = tmpl.name();
    info.template_text = tmpl.text();
  }
  info.add_bos = add_bos_name(options.add_bos);
  if (inputs.size() == 1) {
    info.source_path = inputs.front().path;
    info.source_sha256 = readers.front()->sha256();
  } else {
    nlohmann::json sources = nlohmann::json::array();
    std::string lines;
    for (size_t s = 0; s < inputs.size(); ++s) {
      const SourceStats& st = stats.sources[s];
      info.source_path += (s == 0 ? "" : "; ") + st.path;
      lines += str(st.path, "=", readers[s]->sha256(), "\n");
      sources.push_back({{"path", st.path}, {"sha256", readers[s]->sha256()}, {"weight", st.weight},
                         {"rows", st.rows}, {"skipped", st.skipped}, {"train_rows", st.train_rows},
                         {"eval_rows", st.eval_rows}, {"tokens", st.tokens}});
    }
    info.source_sha256 = sha256_hex(lines);
    info.sources = sources.dump();
  }
  info.num_skipped_rows = stats.skipped_rows;
  info.num_truncated_rows = stats.truncated_rows;
  info.num_dropped_rows = stats.dropped_rows;
  info.max_length = options.max_length;
  info.seed = static_cast<int64_t>(options.seed);
  info.eval_fraction = options.eval_fraction;
  writer.finish(info);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace dtune
