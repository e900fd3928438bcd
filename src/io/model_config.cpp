// load_model_config: config.json (+ generation_config.json) of Llama and Qwen2 models.
#include "dtune/io/model_config.h"

#include <algorithm>
#include <filesystem>

#include "dtune/core/error.h"
#include "json_file.h"

namespace dtune {

namespace {

using io_detail::get_bool;
using io_detail::get_double;
using io_detail::get_int;
using io_detail::get_string;
using nlohmann::json;

// eos/bos ids may be an int, a list of ints, or null.
std::vector<int32_t> read_token_ids(const json& j, const std::string& key, const std::string& file) {
  std::vector<int32_t> ids;
  if (!j.contains(key) || j.at(key).is_null()) return ids;
  const json& v = j.at(key);
  auto add = [&](const json& x) {
    DTUNE_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() <= INT32_MAX, file, ": key \"",
                key, "\" must be a token id (non-negative integer) or a list of them, got ", v.dump());
    ids.push_back(static_cast<int32_t>(x.get<int64_t>()));
  };
  if (v.is_array()) {
    for (const json& x : v) add(x);
  } else {
    add(v);
  }
  return ids;
}

std::optional<int32_t> read_single_id(const json& j, const std::string& key, const std::string& file) {
  auto ids = read_token_ids(j, key, file);
  if (ids.empty()) return std::nullopt;
  return ids.front();
}

// rope_scaling (transformers v4) or rope_parameters (v5). Both spell the kind "type" or "rope_type".
RopeScaling read_rope_scaling(const json& r, const std::string& where, const std::string& file) {
  RopeScaling s;
  std::string type = get_string(r, "rope_type", "", file);
  if (type.empty()) type = get_string(r, "type", "default", file);
  s.type = type;
  if (type == "default") return s;
  DTUNE_CHECK(type == "llama3", file, ": ", where, ".rope_type \"", type,
              "\" is not supported (dtune implements \"default\" and \"llama3\")");
  for (const char* key : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    DTUNE_CHECK(r.contains(key) && !r.at(key).is_null(), file, ": ", where, " of type llama3 is missing \"", key,
                "\"");
  }
  s.factor = get_double(r, "factor", 0, file);
  s.low_freq_factor = get_double(r, "low_freq_factor", 0, file);
  s.high_freq_factor = get_double(r, "high_freq_factor", 0, file);
  s.original_max_position_embeddings = get_int(r, "original_max_position_embeddings", 0, file);
  DTUNE_CHECK(s.factor > 0 && s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor &&
                  s.original_max_position_embeddings > 0,
              file, ": ", where, " has invalid llama3 values (need factor > 0, 0 < low_freq_factor < "
              "high_freq_factor, original_max_position_embeddings > 0)");
  return s;
}

void require_key(const json& j, const std::string& key, const std::string& file) {
  DTUNE_CHECK(j.contains(key) && !j.at(key).is_null(), file, ": missing required key \"", key, "\"");
}

}  // namespace

ModelConfig load_model_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const std::string file = (fs::path(model_dir) / "config.json").string();
  DTUNE_CHECK(fs::is_regular_file(file), file, " not found: --model must be a Hugging Face model folder "
              "(config.json + *.safetensors), e.g. models/SmolLM2-135M-Instruct");
  const json j = io_detail::read_json_file(file);
  DTUNE_CHECK(j.is_object(), file, ": expected a JSON object");

  ModelConfig c;
  c.model_type = io_detail::require_string(j, "model_type", file);
  DTUNE_CHECK(c.model_type == "llama" || c.model_type == "qwen2", file, ": model_type \"", c.model_type,
              "\" is not supported (dtune trains \"llama\" and \"qwen2\" models)");
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads"}) {
    require_key(j, key, file);
  }
  c.vocab_size = get_int(j, "vocab_size", 0, file);
  c.hidden_size = get_int(j, "hidden_size", 0, file);
  c.intermediate_size = get_int(j, "intermediate_size", 0, file);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", 0, file);
  c.num_attention_heads = get_int(j, "num_attention_heads", 0, file);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", c.num_attention_heads, file);
  for (auto [name, v] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                         {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
                         {"num_attention_heads", c.num_attention_heads},
                         {"num_key_value_heads", c.num_key_value_heads}}) {
    DTUNE_CHECK(v > 0, file, ": \"", name, "\" must be positive, got ", v);
  }
  DTUNE_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, file, ": num_attention_heads (",
              c.num_attention_heads, ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  const bool has_head_dim = j.contains("head_dim") && !j.at("head_dim").is_null();
  if (!has_head_dim) {
    DTUNE_CHECK(c.hidden_size % c.num_attention_heads == 0, file, ": hidden_size (", c.hidden_size,
                ") is not divisible by num_attention_heads (", c.num_attention_heads, ") and no \"head_dim\" is given");
  }
  c.head_dim = has_head_dim ? get_int(j, "head_dim", 0, file) : c.hidden_size / c.num_attention_heads;
  DTUNE_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, file, ": head_dim must be positive and even (RoPE rotates "
              "pairs), got ", c.head_dim);
  // transformers' defaults for configs that omit these keys.
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.model_type == "qwen2" ? 32768 : 2048, file);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", 1e-6, file);
  DTUNE_CHECK(c.rms_norm_eps > 0, file, ": rms_norm_eps must be positive");

  // RoPE: v4 puts rope_theta at the top level and scaling in rope_scaling; v5 puts both in
  // rope_parameters. Either may be null.
  c.rope_theta = get_double(j, "rope_theta", 10000.0, file);
  if (j.contains("rope_parameters") && !j.at("rope_parameters").is_null()) {
    const json& r = j.at("rope_parameters");
    DTUNE_CHECK(r.is_object(), file, ": \"rope_parameters\" must be an object");
    c.rope_theta = get_double(r, "rope_theta", c.rope_theta, file);
    c.rope_scaling = read_rope_scaling(r, "rope_parameters", file);
  } else if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) {
    const json& r = j.at("rope_scaling");
    DTUNE_CHECK(r.is_object(), file, ": \"rope_scaling\" must be an object or null");
    c.rope_scaling = read_rope_scaling(r, "rope_scaling", file);
  }
  DTUNE_CHECK(c.rope_theta > 0, file, ": rope_theta must be positive");

  const std::string act = get_string(j, "hidden_act", "silu", file);
  DTUNE_CHECK(act == "silu", file, ": hidden_act \"", act, "\" is not supported (Llama/Qwen2 use \"silu\")");
  if (c.model_type == "qwen2") {
    // Qwen2 always has q/k/v biases and no o_proj bias; its config has no attention_bias key.
    c.attention_bias = true;
    c.mlp_bias = false;
    DTUNE_CHECK(!get_bool(j, "use_sliding_window", false, file), file,
                ": use_sliding_window=true is not supported (dtune uses full attention)");
  } else {
    c.attention_bias = get_bool(j, "attention_bias", false, file);
    c.mlp_bias = get_bool(j, "mlp_bias", false, file);
    DTUNE_CHECK(get_int(j, "pretraining_tp", 1, file) == 1, file, ": pretraining_tp != 1 is not supported");
  }
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false, file);
  c.bos_token_id = read_single_id(j, "bos_token_id", file);
  c.pad_token_id = read_single_id(j, "pad_token_id", file);
  c.eos_token_ids = read_token_ids(j, "eos_token_id", file);
  c.torch_dtype = get_string(j, "torch_dtype", get_string(j, "dtype", "", file), file);

  const std::string gen_file = (fs::path(model_dir) / "generation_config.json").string();
  c.generation = load_generation_config(model_dir);
  if (fs::is_regular_file(gen_file)) {
    const json g = io_detail::read_json_file(gen_file);
    DTUNE_CHECK(g.is_object(), gen_file, ": expected a JSON object");
    for (int32_t id : read_token_ids(g, "eos_token_id", gen_file)) {
      if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) {
        c.eos_token_ids.push_back(id);
      }
    }
  }
  for (int32_t id : c.eos_token_ids) {
    DTUNE_CHECK(id < c.vocab_size, file, ": eos token id ", id, " is outside the vocabulary (vocab_size ",
                c.vocab_size, ")");
  }
  return c;
}

}  // namespace dtune
