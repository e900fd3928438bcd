// `dtune generate`: text from a base model (+ optional PEFT adapter) with the recipe's sampling
// knobs. stdout carries only the generated text (or JSONL rows); timings go to stderr.
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/core/device_request.h"
#include "dtune/core/error.h"
#include "dtune/dist/device.h"
#include "dtune/core/log.h"
#include "dtune/generate/chat_format.h"
#include "dtune/generate/generator.h"
#include "dtune/io/dtype_names.h"
#include "dtune/model/decoder.h"
#include "dtune/tokenizer/tokenizer.h"

namespace dtune::cli {
namespace {

struct GenerateArgs {
  std::string model_dir, adapter_dir;
  std::string prompt, prompt_file, input_jsonl;
  std::string dtype = "fp32", device = "cpu";
  bool chat = false;
  std::string system;    // --system: a system message for --chat
  bool verbose = false;  // -v: print the resolved generation knobs and their sources
  int64_t batch_size = 8;
  int threads = 0;  // 0 = libtorch's default
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DTUNE_CHECK(in, "--prompt-file: cannot open ", path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void log_stats(const GenerateStats& s) {
  log::info(str("prefill ", s.prompt_tokens, " tokens in ", static_cast<int64_t>(s.prefill_seconds * 1000),
                " ms; decode ", s.decode_tokens, " tokens in ", s.decode_seconds, " s = ",
                s.decode_tokens_per_second(), " tokens/s"));
}

// --input JSONL: {"prompt": ...} per line -> {"prompt","completion","tokens","seconds"} per line
// on stdout, batch_size prompts per generate call ("seconds" is the batch's wall time).
void run_jsonl(Decoder& decoder, const Tokenizer& tokenizer, const GenerateArgs& a,
               const GenerateOptions& options) {
  std::ifstream in(a.input_jsonl);
  DTUNE_CHECK(in, "--input: cannot open ", a.input_jsonl);
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t row = 1; std::getline(in, line); ++row) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(str(a.input_jsonl, " line ", row, ": invalid JSON (", e.what(), ")"));
    }
    DTUNE_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string(), a.input_jsonl, " line ",
                row, ": expected an object with a string field \"prompt\"");
    prompts.push_back(j["prompt"].get<std::string>());
  }
  const ModelConfig& config = decoder.config();
  const std::string form = a.chat ? "chat" : "none";
  for (size_t begin = 0; begin < prompts.size(); begin += static_cast<size_t>(a.batch_size)) {
    const size_t end = std::min(prompts.size(), begin + static_cast<size_t>(a.batch_size));
    std::vector<std::vector<int32_t>> ids;
    for (size_t i = begin; i < end; ++i) {
      const FormattedPrompt p = format_prompt(form, prompts[i], a.model_dir, a.system);
      ids.push_back(tokenizer.encode(p.text, p.add_special_tokens));
    }
    const auto start = std::chrono::steady_clock::now();
    GenerateStats stats;
    const auto outputs = generate_ids(decoder, ids, options, &stats);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = begin; i < end; ++i) {
      std::vector<int32_t> out = outputs[i - begin];
      const int64_t tokens = static_cast<int64_t>(out.size());
      if (!out.empty() && std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), out.back()) !=
                              config.eos_token_ids.end())
        out.pop_back();
      nlohmann::json row = {{"prompt", prompts[i]}, {"completion", tokenizer.decode(out, true)},
                            {"tokens", tokens}, {"seconds", seconds}};
      std::cout << row.dump() << "\n" << std::flush;
    }
    log_stats(stats);
  }
}

}  // namespace

int run_generate(int argc, char** argv) {
  GenerateArgs a;
  // Every knob unset: each resolves as in transformers' generate() (the flag, then the model
  // folder's generation_config.json, then transformers' defaults; resolve_generate_options).
  GenerateOptions o = GenerateOptions::unset();
  po::options_description desc(
      "usage: dtune generate --model DIR [--adapter DIR] (--prompt TEXT | --prompt-file F | --input JSONL)\n"
      "                      [options]\n\n"
      "Generates with a KV cache: the prompt in one forward, then one token per forward until an EOS id\n"
      "of config.json/generation_config.json or --max-new-tokens. Processors as transformers' generate():\n"
      "repetition penalty, then when sampling temperature, top-k, top-p and a seeded multinomial draw.\n"
      "Each knob resolves as transformers resolves it: the flag when given, else the model folder's\n"
      "generation_config.json, else transformers' default (do_sample false = greedy, temperature 1,\n"
      "top_p 1, top_k 50, repetition_penalty 1, 20 new tokens); -v prints the values used.\n"
      "stdout: the generated text, streamed (with --input: one JSON row per prompt,\n"
      "{\"prompt\",\"completion\",\"tokens\",\"seconds\"}); stderr: timings.\n\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&a.model_dir)->required(), "HF model folder (config.json, *.safetensors, tokenizer.json)")
      ("adapter", po::value(&a.adapter_dir), "PEFT LoRA adapter folder to apply")
      ("prompt", po::value(&a.prompt), "the prompt text")
      ("prompt-file", po::value(&a.prompt_file), "read the prompt from this file (verbatim)")
      ("input", po::value(&a.input_jsonl), "JSONL file of {\"prompt\": ...} rows; writes JSONL rows")
      ("batch-size", po::value(&a.batch_size)->default_value(a.batch_size), "prompts per batch with --input");
  // --max-new-tokens, --temperature, --top-p, --top-k, --repetition-penalty, --seed: the same
  // definitions (defaults, help, validation) as the [generate] config keys.
  add_option_fields(desc, o, GenerateOptions::fields());
  desc.add_options()
      ("chat", po::bool_switch(&a.chat), "wrap the prompt in the model's chat format (tokenizer_config.json), as "
       "apply_chat_template(add_generation_prompt=True)")
      ("system", po::value(&a.system), "a system message before the prompt (with --chat)")
      ("no-chat", "use the prompt as is (the default)")
      ("dtype", po::value(&a.dtype)->default_value(a.dtype), kDtypeNames)
      ("device", po::value(&a.device)->default_value(a.device), "auto | cpu | cuda[:N]")
      ("threads", po::value(&a.threads)->default_value(0), "CPU threads for libtorch; 0 = its default")
      ("verbose,v", po::bool_switch(&a.verbose), "print the resolved generation knobs and their sources (stderr)");
  po::variables_map vm;
  const auto exit_code = parse_args({"generate", desc}, argc, argv, vm, [&] {
    const int sources = static_cast<int>(vm.count("prompt") + vm.count("prompt-file") + vm.count("input"));
    if (sources != 1) throw po::error("give exactly one of --prompt, --prompt-file, --input");
    if (a.chat && vm.count("no-chat")) throw po::error("--chat and --no-chat contradict each other");
    if (vm.count("system") && !a.chat) throw po::error("--system needs --chat");
  });
  if (exit_code) return *exit_code;
  validate(o);  // the given values; resolve_generate_options checks the resolved ones
  DTUNE_CHECK(a.batch_size >= 1, "--batch-size must be >= 1, got ", a.batch_size);
  DTUNE_CHECK(a.threads >= 0, "--threads must be >= 0, got ", a.threads);
  if (a.threads > 0) at::set_num_threads(a.threads);

  DecoderOptions model_options;
  model_options.dtype = dtype_from_name(a.dtype, "--dtype");
  model_options.device = dist::select_device(parse_device_request(a.device, "--device", /*allow_index=*/true),
                                             /*local_rank=*/0, "--device");
  const auto load_start = std::chrono::steady_clock::now();
  Decoder decoder = Decoder::load(a.model_dir, model_options);
  if (!a.adapter_dir.empty()) load_adapter_into(decoder, a.adapter_dir);
  const Tokenizer tokenizer = Tokenizer::load(a.model_dir);
  log::info(str("loaded ", a.model_dir, a.adapter_dir.empty() ? "" : " + " + a.adapter_dir, " in ",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count(), " s"));

  const ResolvedGenerateOptions resolved = resolve_generate_options(o, decoder.config().generation);
  if (a.verbose) {
    std::string text = "generation knobs:";
    for (const std::string& line : resolved.lines) text += "\n  " + line;
    log::info(text);
  }

  if (!a.input_jsonl.empty()) {
    run_jsonl(decoder, tokenizer, a, o);
    return kExitOk;
  }
  const std::string text = vm.count("prompt") ? a.prompt : read_file(a.prompt_file);
  const FormattedPrompt p = format_prompt(a.chat ? "chat" : "none", text, a.model_dir, a.system);
  o.add_special_tokens = p.add_special_tokens;
  GenerateStats stats;
  generate_text(decoder, tokenizer, p.text, o,
                [](std::string_view piece) {
                  std::fwrite(piece.data(), 1, piece.size(), stdout);
                  std::fflush(stdout);
                },
                &stats);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  log_stats(stats);
  return kExitOk;
}

}  // namespace dtune::cli
