// `dtune pretokenize`: rows of a JSON/JSONL file -> prompt template -> token ids -> one HDF5
// file with /train and /eval splits (layout in hdf5_format.h and docs/DATA_FORMAT.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtune/data/chat_template.h"
#include "dtune/data/conversation.h"
#include "dtune/data/prompt_template.h"
#include "dtune/data/row_reader.h"
#include "dtune/data/source_mix.h"

namespace dtune {

class Tokenizer;

enum class AddBos {
  kAuto,  // apply the tokenizer's post-processor to the prompt; a doubled BOS (template text
          // that already starts with the BOS token) is collapsed to one
  kYes,   // as auto, then make sure the row starts with the BOS id (error if none exists)
  kNo,    // no post-processor: the ids are exactly the template text's
};
AddBos parse_add_bos(const std::string& value);  // "auto" | "yes" | "no", else dtune::Error
const char* add_bos_name(AddBos value);

struct PretokenizeOptions {
  std::string tokenizer_path;   // tokenizer.json or its folder
  std::string input_path;       // the input (row_source.h: JSON/JSONL, .gz/.zst, Parquet, Arrow)
  // Several inputs with weights (--input FILE[:WEIGHT] repeated); empty: {input_path, 1}.
  std::vector<InputSource> inputs;
  std::vector<InputSource> sources() const {
    return inputs.empty() ? std::vector<InputSource>{{input_path, 1}} : inputs;
  }
  std::string output_path;      // the .h5 file to create (replaced only on success)
  std::string template_name = "recipe";  // a preset; ignored when template_file is set
  std::string template_file;    // a template file (syntax in prompt_template.h)
  bool template_given = false;  // --template/--template-file passed: auto format = template
  RowFormat format = RowFormat::kAuto;  // auto: from the first row's fields (conversation.h)
  // Conversational rows: the chat template's tokenizer_config.json (or chat_template.jinja, or
  // their folder); "" = the one beside the tokenizer.
  std::string chat_template_path;
  bool assistant_only_loss = true;   // messages/sharegpt: loss on assistant turns only (TRL's
                                     // assistant_only_loss); false: on every token
  bool completion_only_loss = true;  // template and prompt-completion rows: loss on the
                                     // completion only (TRL's completion_only_loss); false: on
                                     // every token
  // Template rows: how prompt and completion become ids. "split" encodes each part alone (the
  // prompt ids are what the model sees at inference); "joint" encodes prompt + completion as one
  // text, as the recipe and TRL with one text field do (ids equal tokenizer(text) bit for bit;
  // a token that spans the boundary, such as ":\n\n", is a completion token). Conversations
  // are always encoded whole.
  std::string encode = "split";
  int64_t max_length = 1024;    // tokens per row at most, BOS/EOS included; longer rows are cut
  double eval_fraction = 0.05;  // probability of a row going to /eval, in [0, 1)
  uint64_t seed = 42;           // fixes the train/eval split
  int threads = 0;              // tokenizer threads; 0 = every CPU this process may use
  bool skip_bad_rows = false;   // bad input rows become counted warnings instead of errors
  AddBos add_bos = AddBos::kAuto;
  int64_t rows_per_batch = 64;  // rows per work item handed to a tokenizer thread
  int64_t max_batches_in_flight = 0;  // read but not yet written; 0 = 4 * threads. Bounds memory.
  bool show_progress = true;    // progress bar (TTY) or a line every 10 s (otherwise)

  // Throws dtune::Error naming the option when a value or combination is invalid.
  void validate() const;
};

// Per input (--input order).
struct SourceStats {
  std::string path;
  double weight = 1;
  int64_t rows = 0;        // good rows read
  int64_t skipped = 0;     // bad rows skipped
  int64_t train_rows = 0;  // rows written to /train (repeats included)
  int64_t eval_rows = 0;
  int64_t tokens = 0;      // tokens written
};

struct PretokenizeStats {
  std::vector<SourceStats> sources;
  int64_t rows_written = 0;  // train + eval
  int64_t train_rows = 0;
  int64_t eval_rows = 0;
  int64_t skipped_rows = 0;
  int64_t truncated_rows = 0;
  int64_t dropped_rows = 0;  // prompt alone reached max_length: nothing to learn from
  int64_t tokens = 0;
  int64_t dropped_reasoning_turns = 0;  // assistant turns whose <think> part the chat template left out
  double seconds = 0;
};

// One row's ids, cut to max_length. Template rows: prompt ids, completion ids, EOS.
// Conversational rows: apply_chat_template(messages, tokenize=True)'s ids (chat_tokenizer.h).
struct TokenizedRow {
  std::vector<int32_t> ids;
  int32_t prompt_length = 0;  // leading ids that take no loss (<= ids.size()); ids.size() when
                              // no id after the first takes the loss (the row is dropped)
  std::vector<int8_t> loss_mask;  // conversational rows: 1 = loss on ids[i]; empty for
                                  // template rows (the loss is on ids[prompt_length:])
  bool truncated = false;
  int dropped_reasoning_turns = 0;  // RenderedChat::dropped_reasoning_turns
};

// The per-row step, separate so that tests check it without files. Thread-safe (const).
class RowTokenizer {
 public:
  // Throws dtune::Error when the tokenizer lacks an EOS (or a BOS with AddBos::kYes).
  RowTokenizer(const Tokenizer& tokenizer, const PromptTemplate& tmpl, AddBos add_bos,
               int64_t max_length);
  // Conversational rows rendered with chat (which must outlive this). train_all: loss on every
  // token instead of the assistant/completion turns.
  RowTokenizer(const Tokenizer& tokenizer, const ChatTemplate& chat, bool train_all, int64_t max_length);
  // values: the template's fields() in order. train_all (set_train_all) puts prompt_length at 0.
  void tokenize(const std::vector<std::string>& values, TokenizedRow& out) const;
  // A row from RowReader: its values (template rows) or messages (conversational rows).
  void tokenize(const Row& row, TokenizedRow& out) const;
  void set_train_all(bool train_all) { train_all_ = train_all; }
  // Template rows: encode prompt + completion as one text (PretokenizeOptions::encode "joint");
  // the prompt is then the leading tokens whose bytes lie inside the rendered prompt.
  void set_joint(bool joint) { joint_ = joint; }

 private:
  const ChatTemplate* chat_ = nullptr;
  bool train_all_ = false;
  bool joint_ = false;
  const Tokenizer& tokenizer_;
  const PromptTemplate* template_ = nullptr;
  AddBos add_bos_;
  int64_t max_length_;
  int32_t bos_ = -1;
  int32_t eos_ = -1;
};

// Deterministic split: row_number (1-based in the input file, bad rows counted) and seed give
// the same answer on every machine; about eval_fraction of rows go to eval.
bool is_eval_row(int64_t row_number, uint64_t seed, double eval_fraction);

// Runs the whole pipeline: one reader (this thread), `threads` tokenizer threads, one writer
// thread; output row order = input order (inputs one after the other). Each row of input s is
// written row_copies(weight_s, row, seed, s) times (source_mix.h; its eval rows once), to
// /eval when is_eval_row(row, source_split_seed(seed, s), eval_fraction). Throws dtune::Error;
// no output file then.
PretokenizeStats pretokenize(const PretokenizeOptions& options);

}  // namespace dtune
