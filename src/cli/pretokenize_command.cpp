// `dtune pretokenize`: JSON/JSONL rows -> prompt template -> token ids -> one HDF5 file.
#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/data/pretokenizer.h"

namespace dtune::cli {

int run_pretokenize(int argc, char** argv) {
  PretokenizeOptions opt;
  std::string add_bos = "auto";
  std::string template_name;
  std::string format = "auto";
  std::vector<std::string> inputs;
  std::string assistant_only_loss = "true", completion_only_loss = "true";
  po::options_description desc(
      "usage: dtune pretokenize --tokenizer PATH --input FILE[:WEIGHT]... --output FILE.h5 [options]\n\n"
      "Tokenizes every row of its inputs (JSON / JSON Lines, plain, .gz or .zst; Parquet; Arrow;\n"
      "datasets folders) into one HDF5 file with /train and /eval splits (docs/DATA_FORMAT.md):\n"
      "rows of string fields through a prompt template (loss on the completion; each row ends\n"
      "with EOS), or conversations (TRL messages, prompt-completion, ShareGPT) through the\n"
      "model's chat template as apply_chat_template renders them (loss on the assistant turns).\n"
      "The output appears only when complete.\n\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("tokenizer", po::value(&opt.tokenizer_path)->value_name("PATH"),
       "tokenizer.json, or the folder holding it and tokenizer_config.json")
      ("input", po::value(&inputs)->composing()->value_name("FILE[:WEIGHT]"),
       "rows: a JSON array or JSON Lines file (plain, .gz or .zst), a Parquet file, an Arrow IPC file/stream or a datasets save_to_disk folder (told from the first bytes). Repeat for several inputs; WEIGHT below 1 samples that fraction of the input's rows, above 1 repeats them (seeded); each input gets its own eval split")
      ("output", po::value(&opt.output_path)->value_name("FILE.h5"), "the HDF5 file to write")
      ("format", po::value(&format)->default_value(format)->value_name("FORMAT"),
       "auto | template | messages | prompt-completion | sharegpt; auto: from the first row's fields (messages, prompt + completion, conversations, else the template's fields)")
      ("chat-template", po::value(&opt.chat_template_path)->value_name("FILE"),
       "conversational rows: the tokenizer_config.json (or chat_template.jinja) whose chat_template renders them; default: the one beside the tokenizer")
      ("assistant-only-loss", po::value(&assistant_only_loss)->default_value(assistant_only_loss)->value_name("true|false"),
       "messages/sharegpt rows: loss on assistant turns (content + end-of-turn token) only; false: on every token")
      ("completion-only-loss", po::value(&completion_only_loss)->default_value(completion_only_loss)->value_name("true|false"),
       "template and prompt-completion rows: loss on the completion only; false: on every token")
      ("encode", po::value(&opt.encode)->default_value(opt.encode)->value_name("split|joint"),
       "template rows: split = prompt and completion encoded apart (the prompt's ids are what the model sees at "
       "inference); joint = the whole text encoded once, as the recipe and TRL do (ids equal tokenizer(text); the "
       "prompt mask is every token whose characters lie inside the prompt)")
      ("template", po::value(&template_name)->value_name("NAME"),
       "preset: recipe (default) or r1-chat")
      ("template-file", po::value(&opt.template_file)->value_name("FILE"),
       "template text with {Field} placeholders, {{ }} for literal braces, and {@completion}\n"
       "where the completion (loss) part starts")
      ("max-length", po::value(&opt.max_length)->default_value(opt.max_length),
       "tokens per row at most, BOS/EOS included; longer rows are cut and counted")
      ("eval-fraction", po::value(&opt.eval_fraction)->default_value(opt.eval_fraction),
       "share of rows put in /eval, decided per row by (row number, seed)")
      ("seed", po::value(&opt.seed)->default_value(opt.seed), "seed of the train/eval split")
      ("threads", po::value(&opt.threads)->default_value(0),
       "tokenizer threads; 0 = every CPU this process may use")
      ("skip-bad-rows", po::bool_switch(&opt.skip_bad_rows),
       "skip malformed/incomplete rows with a warning instead of stopping")
      ("add-bos", po::value(&add_bos)->default_value(add_bos)->value_name("auto|yes|no"),
       "auto: the tokenizer's post-processor on the prompt (no doubled BOS); yes: also force\n"
       "a BOS first; no: ids of the template text only")
      ("no-progress", "no progress bar / progress lines (the summary is still printed)");
  po::variables_map vm;
  const CommandLine cl{.name = "pretokenize",
                       .options = desc,
                       .help_epilog = "example:\n  dtune pretokenize --tokenizer models/llama3_1 "
                                      "--input medical_o1_sft.json --output medical.h5 --template recipe\n",
                       .usage_after_error = false};
  if (const auto exit_code = parse_args(cl, argc, argv, vm)) return *exit_code;
  DTUNE_CHECK(template_name.empty() || opt.template_file.empty(),
              "--template and --template-file exclude each other; pass one");
  if (!template_name.empty()) opt.template_name = template_name;
  opt.template_given = !template_name.empty() || !opt.template_file.empty();
  opt.format = parse_row_format(format);
  for (const std::string& in : inputs) opt.inputs.push_back(parse_input_source(in));
  if (!opt.inputs.empty()) opt.input_path = opt.inputs.front().path;
  const auto parse_bool = [](const std::string& name, const std::string& v) {
    DTUNE_CHECK(v == "true" || v == "false", "--", name, ": expected true or false, got '", v, "'");
    return v == "true";
  };
  opt.assistant_only_loss = parse_bool("assistant-only-loss", assistant_only_loss);
  opt.completion_only_loss = parse_bool("completion-only-loss", completion_only_loss);
  opt.add_bos = parse_add_bos(add_bos);
  opt.show_progress = vm.count("no-progress") == 0;

  const PretokenizeStats s = pretokenize(opt);
  log::info(str("pretokenize: wrote ", opt.output_path, ": ", s.train_rows, " train + ",
                s.eval_rows, " eval rows, ", s.tokens, " tokens (", s.rows_written > 0 ?
                s.tokens / s.rows_written : 0, " per row)"));
  log::info(str("pretokenize: ", s.truncated_rows, " rows truncated to --max-length ",
                opt.max_length, ", ", s.dropped_rows, " dropped (prompt alone reached it), ",
                s.skipped_rows, " bad rows skipped; ", static_cast<int64_t>(
                s.seconds > 0 ? double(s.rows_written) / s.seconds : 0), " rows/s in ",
                static_cast<int64_t>(s.seconds * 10) / 10.0, " s"));
  if (s.sources.size() > 1) {
    for (size_t i = 0; i < s.sources.size(); ++i) {
      const SourceStats& src = s.sources[i];
      log::info(str("pretokenize: input ", i, " ", src.path, " (weight ", src.weight, "): ", src.rows,
                    " rows read, ", src.skipped, " skipped -> ", src.train_rows, " train + ", src.eval_rows,
                    " eval rows, ", src.tokens, " tokens"));
    }
  }
  if (s.dropped_reasoning_turns > 0) {
    log::warn(str(s.dropped_reasoning_turns, " assistant turns had reasoning (text before </think>) that the model's ",
                  "chat template leaves out, as apply_chat_template does (DeepSeek-R1 templates keep only the answer), ",
                  "so it is not trained on; to train on it, format the rows yourself: --format template with a ",
                  "--template-file that keeps it, as the r1-chat preset does"));
  }
  if (s.eval_rows == 0 && opt.eval_fraction > 0) {
    log::warn("the eval split is empty; raise --eval-fraction or use more rows");
  }
  return kExitOk;
}

}  // namespace dtune::cli
