// `dtune tokenize`: JSON Lines {"text": ...} on stdin -> {"ids": [...]} on stdout (or the reverse
// with --decode), one output line per input line in order, encoded by batches on N threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/core/cpus.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/tokenizer/tokenizer.h"

namespace dtune::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer;             // tokenizer.json, or the folder holding it
  bool add_special_tokens = false;   // apply the post-processor (e.g. Llama 3's BOS)
  bool decode = false;               // read {"ids": [...]}, write {"text": ...}
  bool skip_special_tokens = false;  // --decode: drop special tokens from the text
  int threads = 0;                   // worker threads; 0 = every CPU this process may use
  std::size_t batch_lines = 8192;    // lines read before a parallel pass
};

// Converts one input line (line_no counts from 1) to its output line, without the newline.
std::atomic<std::size_t> g_tokens{0};  // ids written, for the closing log line

std::string convert_line(const Tokenizer& tok, const TokenizeOptions& opt, const std::string& line,
                         std::size_t line_no) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str("stdin:", line_no, ": not a JSON object (", e.what(), "); each line must be ",
                    opt.decode ? "{\"ids\": [...]}" : "{\"text\": \"...\"}"));
  }
  if (!opt.decode) {
    DTUNE_CHECK(j.is_object() && j.contains("text") && j["text"].is_string(), "stdin:", line_no,
                ": expected an object with a string field \"text\", e.g. {\"text\": \"hello\"}");
    const auto ids = tok.encode(j["text"].get_ref<const std::string&>(), opt.add_special_tokens);
    g_tokens.fetch_add(ids.size(), std::memory_order_relaxed);
    std::string out = "{\"ids\":[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(ids[i]);
    }
    out += "]}";
    return out;
  }
  DTUNE_CHECK(j.is_object() && j.contains("ids") && j["ids"].is_array(), "stdin:", line_no,
              ": expected an object with an array field \"ids\", e.g. {\"ids\": [1, 2]}");
  std::vector<int32_t> ids;
  ids.reserve(j["ids"].size());
  for (std::size_t i = 0; i < j["ids"].size(); ++i) {
    const auto& v = j["ids"][i];
    DTUNE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < tok.vocab_size(), "stdin:",
                line_no, ": ids[", i, "] = ", v.dump(), " is not a token id in [0, ", tok.vocab_size(), ")");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return "{\"text\":" + nlohmann::json(tok.decode(ids, opt.skip_special_tokens)).dump() + "}";
}

// Converts lines[0..n) (numbered from first_line_no) on up to `threads` threads and writes the
// results to stdout in order. The first error in line order is rethrown.
void convert_batch(const Tokenizer& tok, const TokenizeOptions& opt, const std::vector<std::string>& lines,
                   std::size_t first_line_no, int threads) {
  std::vector<std::string> out(lines.size());
  std::vector<std::exception_ptr> errors(lines.size());
  auto work = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      try {
        out[i] = convert_line(tok, opt, lines[i], first_line_no + i);
      } catch (...) {
        errors[i] = std::current_exception();
        return;
      }
    }
  };
  const std::size_t n_threads = std::min<std::size_t>(std::max(threads, 1), (lines.size() + 63) / 64);
  if (n_threads <= 1) {
    work(0, lines.size());
  } else {
    // Interleaved blocks of 64 lines keep the threads evenly loaded when line lengths vary.
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < n_threads; ++t) {
      pool.emplace_back([&, t] {
        for (std::size_t b = t * 64; b < lines.size(); b += n_threads * 64) work(b, std::min(b + 64, lines.size()));
      });
    }
    for (auto& th : pool) th.join();
  }
  std::string buffer;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (errors[i]) {
      std::fwrite(buffer.data(), 1, buffer.size(), stdout);  // lines before the bad one still come out
      std::fflush(stdout);
      std::rethrow_exception(errors[i]);
    }
    buffer += out[i];
    buffer += '\n';
  }
  std::fwrite(buffer.data(), 1, buffer.size(), stdout);
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  TokenizeOptions opt;
  po::options_description desc(
      "dtune tokenize: JSON Lines {\"text\": ...} on stdin -> {\"ids\": [...]} on stdout\n"
      "(one output line per input line, same order; ids equal PyPI `tokenizers`)\n\n"
      "usage: dtune tokenize --tokenizer PATH [options] < in.jsonl > out.jsonl\n\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("tokenizer", po::value(&opt.tokenizer)->required(), "tokenizer.json, or the folder holding it")
      ("add-special-tokens", po::bool_switch(&opt.add_special_tokens), "apply the post-processor (e.g. BOS for Llama 3)")
      ("decode", po::bool_switch(&opt.decode), "read {\"ids\": [...]} lines and write {\"text\": ...}")
      ("skip-special-tokens", po::bool_switch(&opt.skip_special_tokens), "with --decode: leave special tokens out")
      ("threads", po::value(&opt.threads)->default_value(0), "worker threads (0 = every CPU this process may use)")
      ("batch-lines", po::value(&opt.batch_lines)->default_value(8192), "lines per parallel batch");
  po::variables_map vm;
  if (const auto exit_code = parse_args({"tokenize", desc}, argc, argv, vm)) return *exit_code;
  DTUNE_CHECK(opt.threads >= 0, "--threads must be >= 0 (0 = every CPU this process may use), got ", opt.threads);
  DTUNE_CHECK(opt.batch_lines >= 1, "--batch-lines must be >= 1");
  DTUNE_CHECK(!opt.skip_special_tokens || opt.decode, "--skip-special-tokens applies only with --decode");
  DTUNE_CHECK(!opt.add_special_tokens || !opt.decode, "--add-special-tokens applies only when encoding, not with --decode");
  const int threads = opt.threads > 0 ? opt.threads : affinity_cpu_count();

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const Tokenizer tok = Tokenizer::load(opt.tokenizer);
  const auto t1 = Clock::now();
  std::ios::sync_with_stdio(false);
  std::vector<std::string> lines;
  lines.reserve(opt.batch_lines);
  std::size_t line_no = 1;  // number of the first line in `lines`
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF input
    lines.push_back(std::move(line));
    if (lines.size() == opt.batch_lines) {
      convert_batch(tok, opt, lines, line_no, threads);
      line_no += lines.size();
      lines.clear();
    }
  }
  DTUNE_CHECK(!std::cin.bad(), "reading stdin failed after line ", line_no + lines.size() - 1);
  convert_batch(tok, opt, lines, line_no, threads);
  std::fflush(stdout);
  DTUNE_CHECK(!std::ferror(stdout), "writing stdout failed (disk full or closed pipe?)");
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double run_s = std::chrono::duration<double>(Clock::now() - t1).count();
  if (opt.decode) {
    log::info(str("tokenize --decode: ", line_no + lines.size() - 1, " lines in ", run_s, " s; loading took ", load_s, " s"));
    return kExitOk;
  }
  log::info(str("tokenize: ", line_no + lines.size() - 1, " lines, ", g_tokens.load(), " tokens in ", run_s,
                " s on ", threads, " threads (", run_s > 0 ? g_tokens.load() / run_s : 0.0,
                " tokens/s); loading the tokenizer took ", load_s, " s"));
  return kExitOk;
}

}  // namespace dtune::cli
