// KV-cache generation (see generator.h): left-padded batch prefill, then one forward per token;
// the token choice is sampling.h's, the stopping rule is generate()'s (EOS or max_new_tokens).
#include "dtune/generate/generator.h"

#include <algorithm>
#include <chrono>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/io/peft_adapter.h"
#include "dtune/lora/lora_adapter.h"
#include "dtune/model/decoder.h"
#include "dtune/tokenizer/tokenizer.h"

namespace dtune {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool is_eos(const ModelConfig& config, int32_t id) {
  return std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) !=
         config.eos_token_ids.end();
}

// U+FFFD, which decode() writes for an incomplete UTF-8 sequence at the end of the ids.
constexpr std::string_view kReplacement = "\xef\xbf\xbd";

}  // namespace

double GenerateStats::decode_tokens_per_second() const {
  return decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0;
}

std::vector<std::vector<int32_t>> generate_ids(Decoder& decoder,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerateOptions& given, GenerateStats* stats,
                                               const StepCallback& on_step) {
  const ModelConfig& config = decoder.config();
  const GenerateOptions options = resolve_generate_options(given, config.generation).options;
  const int64_t batch = static_cast<int64_t>(prompts.size());
  DTUNE_CHECK(batch >= 1, "generate: no prompt given");
  int64_t prompt_len = 0;  // the longest prompt; shorter rows are left-padded to it
  int64_t real_tokens = 0;
  for (size_t r = 0; r < prompts.size(); ++r) {
    DTUNE_CHECK(!prompts[r].empty(), "generate: prompt ", r, " is empty after tokenization");
    for (int32_t id : prompts[r])
      DTUNE_CHECK(id >= 0 && id < config.vocab_size, "generate: prompt ", r, " holds token id ", id,
                  " outside the model's vocabulary [0, ", config.vocab_size,
                  "); does the tokenizer belong to this model?");
    prompt_len = std::max<int64_t>(prompt_len, static_cast<int64_t>(prompts[r].size()));
    real_tokens += static_cast<int64_t>(prompts[r].size());
  }
  const int64_t context = config.max_position_embeddings;
  DTUNE_CHECK(context <= 0 || prompt_len < context, "generate: a prompt has ", prompt_len,
              " tokens but the model's context (max_position_embeddings) is ", context,
              "; shorten the prompt");
  // generation_config.json's max_length counts the (padded) prompt, as in transformers.
  if (options.max_length)
    DTUNE_CHECK(*options.max_length > prompt_len, "generate: the prompt has ", prompt_len,
                " tokens but max_length (", config.generation.file, ") is ", *options.max_length,
                "; give --max-new-tokens (or generate.max_new_tokens)");
  const int64_t requested = options.max_length ? *options.max_length - prompt_len : *options.max_new_tokens;
  int64_t max_new = requested;
  if (context > 0 && prompt_len + max_new > context) {
    max_new = context - prompt_len;
    log::warn(str("generate: prompt (", prompt_len, " tokens) + max_new_tokens (", requested,
                  ") exceeds the context of ", context, "; generating at most ", max_new, " tokens"));
  }

  c10::InferenceMode inference;
  const c10::Device device = decoder.options().device;
  const int32_t pad_id = config.pad_token_id.value_or(
      config.eos_token_ids.empty() ? 0 : config.eos_token_ids.front());
  const int64_t total_len = prompt_len + max_new;

  // Left padding: every row's last prompt token sits at slot prompt_len - 1.
  at::Tensor ids = at::full({batch, prompt_len}, pad_id, at::kLong);
  at::Tensor valid = at::zeros({batch, prompt_len}, at::kBool);
  // Ids seen so far for the repetition penalty, -1 = padding or not yet generated. (B, total_len)
  at::Tensor seen = at::full({batch, total_len}, -1, at::kLong);
  for (int64_t r = 0; r < batch; ++r) {
    const auto& p = prompts[static_cast<size_t>(r)];
    const int64_t pad = prompt_len - static_cast<int64_t>(p.size());
    at::Tensor row = at::tensor(std::vector<int64_t>(p.begin(), p.end()), at::kLong);
    ids[r].narrow(0, pad, row.size(0)).copy_(row);
    seen[r].narrow(0, pad, row.size(0)).copy_(row);
    valid[r].narrow(0, pad, row.size(0)).fill_(true);
  }
  const bool padded = real_tokens != batch * prompt_len;
  ids = ids.to(device);
  valid = valid.to(device);  // seen stays on the host, where the tokens are chosen

  const auto prefill_start = Clock::now();
  KVCache cache = decoder.make_kv_cache(batch, total_len);
  at::Tensor positions = position_ids_from_padding(valid);  // (B, prompt_len)
  at::Tensor hidden = decoder.forward_hidden(
      ids, positions, padded ? AttentionMask::padding(valid) : AttentionMask::causal(), &cache);
  at::Tensor last_position = positions.narrow(1, prompt_len - 1, 1);  // (B, 1)
  at::Generator generator = make_sampling_generator(options.sampling.seed);
  at::Tensor logits = decoder.logits(hidden.narrow(1, prompt_len - 1, 1).squeeze(1));  // (B, V)

  std::vector<std::vector<int32_t>> out(static_cast<size_t>(batch));
  std::vector<bool> finished(static_cast<size_t>(batch), false);
  std::vector<int32_t> step_tokens(static_cast<size_t>(batch));
  int64_t new_tokens = 0, decode_tokens = 0, steps = 0;
  double prefill_seconds = 0;
  auto decode_start = Clock::now();
  for (int64_t step = 0; step < max_new; ++step) {
    at::Tensor next_cpu = select_next_tokens(logits, seen.narrow(1, 0, prompt_len + step), options.sampling,
                                             generator);  // (B,) on the host
    if (options.agree_tokens) options.agree_tokens(next_cpu);
    const int64_t* next_ptr = next_cpu.data_ptr<int64_t>();
    bool all_done = true;
    for (size_t r = 0; r < out.size(); ++r) {
      if (finished[r]) {
        step_tokens[r] = -1;
        continue;
      }
      const int32_t id = static_cast<int32_t>(next_ptr[r]);
      out[r].push_back(id);
      step_tokens[r] = id;
      ++new_tokens;
      if (step > 0) ++decode_tokens;
      if (options.stop_at_eos && is_eos(config, id)) finished[r] = true;
      all_done = all_done && finished[r];
    }
    if (step == 0) {
      prefill_seconds = seconds_since(prefill_start);
      decode_start = Clock::now();
    }
    if (on_step) on_step(step, step_tokens);
    if (all_done || step + 1 == max_new) break;

    // Finished rows keep decoding a pad token (cheaper than reshaping the batch); their outputs
    // are ignored and rows never see each other.
    for (size_t r = 0; r < out.size(); ++r)
      if (finished[r]) next_cpu.data_ptr<int64_t>()[r] = pad_id;
    seen.narrow(1, prompt_len + step, 1).copy_(next_cpu.unsqueeze(1));
    at::Tensor input = next_cpu.to(device).unsqueeze(1);  // (B, 1)
    last_position = last_position + 1;
    hidden = decoder.forward_hidden(input, last_position, AttentionMask::causal(), &cache);
    logits = decoder.logits(hidden.squeeze(1));
    ++steps;
  }
  if (stats != nullptr) {
    stats->prompt_tokens = real_tokens;
    stats->new_tokens = new_tokens;
    stats->decode_tokens = decode_tokens;
    stats->decode_steps = steps;
    stats->prefill_seconds = prefill_seconds;
    stats->decode_seconds = steps > 0 ? seconds_since(decode_start) : 0.0;
  }
  return out;
}

TextStreamer::TextStreamer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string TextStreamer::push(int32_t id) {
  ids_.push_back(id);
  std::string text = tokenizer_.decode(ids_, skip_special_tokens_);
  while (text.size() >= kReplacement.size() && text.ends_with(kReplacement))
    text.resize(text.size() - kReplacement.size());
  if (text.size() <= emitted_.size() || !text.starts_with(emitted_)) return "";
  std::string piece = text.substr(emitted_.size());
  emitted_ = std::move(text);
  return piece;
}

std::string TextStreamer::finish() {
  std::string text = tokenizer_.decode(ids_, skip_special_tokens_);
  if (text.size() <= emitted_.size() || !text.starts_with(emitted_)) return "";
  std::string piece = text.substr(emitted_.size());
  emitted_ = std::move(text);
  return piece;
}

std::string generate_text(Decoder& decoder, const Tokenizer& tokenizer, const std::string& prompt,
                          const GenerateOptions& options,
                          const std::function<void(std::string_view)>& on_text,
                          GenerateStats* stats) {
  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt, options.add_special_tokens);
  TextStreamer streamer(tokenizer);
  std::string result;
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    result += piece;
    if (on_text) on_text(piece);
  };
  const ModelConfig& config = decoder.config();
  generate_ids(decoder, {prompt_ids}, options, stats,
               [&](int64_t, const std::vector<int32_t>& tokens) {
                 if (tokens[0] >= 0 && !is_eos(config, tokens[0])) emit(streamer.push(tokens[0]));
               });
  emit(streamer.finish());
  return result;
}

void load_adapter_into(Decoder& decoder, const std::string& adapter_dir) {
  const PeftAdapter adapter = load_peft_adapter(adapter_dir, decoder.options().device);
  try {
    attach_lora_weights(decoder.named_linears(), adapter.modules, adapter.config.dropout);
  } catch (const Error& e) {
    throw Error(str("adapter ", adapter_dir, " does not fit the model: ", e.what(),
                    "\n  (was it trained on this base model? check base_model_name_or_path in its "
                    "adapter_config.json)"));
  }
}

}  // namespace dtune
