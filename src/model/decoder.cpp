// Decoder: weight loading with shape checks, the layer stack (optionally checkpointed), the
// LM head, the chunked loss, and the LoRA entry points.
#include "dtune/model/decoder.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <optional>
#include <torch/csrc/autograd/custom_function.h>

#include "dtune/core/error.h"
#include "dtune/io/safetensors.h"
#include "dtune/kernels/cpu_gemv.h"
#include "dtune/kernels/kernel_choice.h"
#include "dtune/model/activation_checkpoint.h"
#include "dtune/kernels/cpu_attention.h"

namespace dtune {
namespace {

// The projections of a layer in unit order, with their shapes (out, in).
struct ProjectionSpec {
  const char* path;  // under model.layers.N.
  int64_t out, in;
  bool bias;
};

std::vector<ProjectionSpec> projections(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  // Qwen2 always has q/k/v biases and no o bias; Llama's attention_bias covers q/k/v/o.
  const bool qwen2 = c.model_type == "qwen2";
  const bool qkv_bias = qwen2 || c.attention_bias;
  const bool o_bias = !qwen2 && c.attention_bias;
  return {{"self_attn.q_proj", nq * hd, H, qkv_bias}, {"self_attn.k_proj", nkv * hd, H, qkv_bias},
          {"self_attn.v_proj", nkv * hd, H, qkv_bias}, {"self_attn.o_proj", H, nq * hd, o_bias},
          {"mlp.gate_proj", I, H, c.mlp_bias},         {"mlp.up_proj", I, H, c.mlp_bias},
          {"mlp.down_proj", H, I, c.mlp_bias}};
}

// The backward half of Decoder::acquire_in_backward: identity forward; in backward, acquire
// the unit (releasing the others) before passing the gradient on. Autograd runs this node
// before any node of the unit's forward, as it is the last op of that forward.
struct AcquireState : torch::CustomClassHolder {
  FrozenWeights* weights = nullptr;
  size_t unit = 0;
  std::optional<size_t> next;  // the unit backward reaches after this one: prefetched
};

struct AcquireInBackward : public torch::autograd::Function<AcquireInBackward> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h,
                            c10::intrusive_ptr<AcquireState> state) {
    ctx->saved_data["state"] = at::IValue::make_capsule(std::move(state));
    return h.view_as(h);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto state = c10::static_intrusive_pointer_cast<AcquireState>(ctx->saved_data["state"].toCapsule());
    state->weights->keep_only(state->unit);
    if (state->next) state->weights->prefetch(*state->next);
    return {grads[0], at::Tensor()};
  }
};

// What every layer's attention reads in one forward pass, owned, so that a checkpointed layer's
// recomputation (in backward, after forward_hidden returned) keeps it alive; view() points an
// AttentionInputs at it (without the cache and layer index, which only decoding sets).
struct LayerInputs {
  at::Tensor cos, sin;         // (B, T, head_dim) in the activation dtype
  at::Tensor sdpa_mask;        // (B, 1, T, T_k) bool; undefined = causal, or not SDPA
  at::Tensor window_starts;    // (B, T) int64 for cpu_attention; undefined = plain causal
  AttentionMask::Rows rows;    // the packed rows, for flash varlen
  KernelPolicy kernels = KernelPolicy::kDtune;
  bool fused_cpu = false;      // cpu_attention (with window_starts)
  bool varlen = false;         // flash attention's varlen kernel (with rows)
  bool training = false;

  AttentionInputs view() const {
    AttentionInputs in;
    in.cos = &cos;
    in.sin = &sin;
    in.mask = sdpa_mask.defined() ? &sdpa_mask : nullptr;
    in.kernels = kernels;
    in.fused_cpu = fused_cpu;
    in.window_starts = window_starts.defined() ? &window_starts : nullptr;
    in.varlen_rows = varlen ? &rows : nullptr;
    in.training = training;
    return in;
  }
};

}  // namespace

std::vector<FrozenUnit> Decoder::frozen_units(const ModelConfig& c) {
  DTUNE_CHECK(c.model_type == "llama" || c.model_type == "qwen2", "model_type '", c.model_type,
              "' is not supported; dtune implements llama and qwen2");
  DTUNE_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 &&
                  c.num_attention_heads % c.num_key_value_heads == 0,
              "config.json: num_attention_heads (", c.num_attention_heads,
              ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  const int64_t H = c.hidden_size, V = c.vocab_size;
  std::vector<FrozenUnit> units;
  units.push_back({{"model.embed_tokens.weight", {V, H}}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    FrozenUnit& u = units.emplace_back();
    u.push_back({p + "input_layernorm.weight", {H}});
    u.push_back({p + "post_attention_layernorm.weight", {H}});
    for (const ProjectionSpec& proj : projections(c)) {
      u.push_back({p + proj.path + ".weight", {proj.out, proj.in}});
      if (proj.bias) u.push_back({p + proj.path + ".bias", {proj.out}});
    }
  }
  units.push_back({{"model.norm.weight", {H}}});
  if (!c.tie_word_embeddings) units.push_back({{"lm_head.weight", {V, H}}});
  return units;
}

Decoder Decoder::load(const std::string& model_dir, const DecoderOptions& options) {
  const ModelConfig config = load_model_config(model_dir);
  const WeightStore store = WeightStore::open(model_dir);
  return Decoder(
      config,
      [&](const std::string& name, c10::ScalarType dtype, c10::Device device) {
        DTUNE_CHECK(store.contains(name), "weight ", name, " is missing from the safetensors of ",
                    model_dir);
        return store.load(name, dtype, device);
      },
      options);
}

Decoder::Decoder(const ModelConfig& config, const WeightLoader& load, const DecoderOptions& options)
    : Decoder(config,
              [&load](const std::vector<FrozenUnit>& units, c10::ScalarType dtype, c10::Device device) {
                return make_resident_weights(units, load, dtype, device);
              },
              options) {}

Decoder::Decoder(const ModelConfig& config, const FrozenWeightsFactory& make_weights, const DecoderOptions& options)
    : config_(config), options_(options) {
  const auto& c = config_;
  DTUNE_CHECK(options.dtype == at::kFloat || options.dtype == at::kHalf ||
                  options.dtype == at::kBFloat16,
              "Decoder dtype must be fp32, fp16 or bf16");
  const std::vector<FrozenUnit> units = frozen_units(c);
  weights_ = make_weights(units, options.dtype, options.device);
  DTUNE_CHECK(weights_ != nullptr, "Decoder: the frozen-weight factory returned no store");
  const std::vector<ProjectionSpec> projs = projections(c);

  embed_tokens_ = weights_->tensors(0).at(0);
  layers_.resize(c.num_hidden_layers);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::vector<at::Tensor> t = weights_->tensors(layer_unit(i));
    size_t k = 0;
    DecoderLayer& l = layers_[i];
    l.eps = c.rms_norm_eps;
    l.input_norm = t.at(k++);
    l.post_attention_norm = t.at(k++);
    Attention& a = l.attention;
    a.n_heads = c.num_attention_heads;
    a.n_kv_heads = c.num_key_value_heads;
    a.head_dim = c.head_dim;
    LoraLinear* linears[] = {&a.q_proj, &a.k_proj, &a.v_proj, &a.o_proj,
                             &l.mlp.gate_proj, &l.mlp.up_proj, &l.mlp.down_proj};
    for (size_t j = 0; j < projs.size(); ++j) {
      at::Tensor w = t.at(k++);
      at::Tensor b = projs[j].bias ? t.at(k++) : at::Tensor();
      *linears[j] = LoraLinear(std::move(w), std::move(b), options.kernels);
    }
  }
  final_norm_ = weights_->tensors(final_norm_unit()).at(0);
  lm_head_ = weights_->tensors(lm_head_unit()).at(0);
  rope_ = RotaryEmbedding(c, options.device);
}

at::Tensor Decoder::acquire_in_backward(const at::Tensor& h, size_t unit, std::optional<size_t> next) const {
  auto state = c10::make_intrusive<AcquireState>();
  state->weights = weights_.get();
  state->unit = unit;
  state->next = next;
  return AcquireInBackward::apply(h, std::move(state));
}

at::Tensor Decoder::forward_hidden(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                   const AttentionMask& mask, KVCache* cache) {
  DTUNE_CHECK(input_ids.dim() == 2 && position_ids.sizes() == input_ids.sizes(),
              "forward_hidden: input_ids and position_ids must both be (B, T), got ",
              shape_str(input_ids.sizes()), " and ", shape_str(position_ids.sizes()));
  const int64_t T = input_ids.size(1);
  FrozenWeights& w = *weights_;
  // A backward pass is coming through the layers: a collective store re-acquires each layer
  // then (acquire_in_backward), since the forward releases it as soon as it has run.
  const bool backward_acquires = w.collective() && at::GradMode::is_enabled() && cache == nullptr &&
                                 num_lora_parameters() > 0;
  w.keep_only(0);  // whatever an earlier pass left acquired goes
  at::Tensor h = at::embedding(embed_tokens_, input_ids);  // (B, T, H); no backward to the weight
  w.release(0);
  auto [cos, sin] = rope_.cos_sin(position_ids, options_.dtype);  // (B, T, hd)

  const KernelPolicy kernels = options_.kernels;
  LayerInputs li;
  li.cos = std::move(cos);
  li.sin = std::move(sin);
  li.kernels = kernels;
  li.training = training_;
  li.fused_cpu = cache == nullptr && mask.kind() != AttentionMask::Kind::kPadding &&
                 use_cpu_attention(kernels, options_.dtype, options_.device, config_.head_dim, T);
  if (li.fused_cpu) li.window_starts = mask.window_starts();
  li.varlen = !li.fused_cpu && cache == nullptr && mask.kind() == AttentionMask::Kind::kPacked &&
              mask.rows().cu_seqlens.defined() &&
              use_flash_varlen_attention(kernels, options_.dtype, options_.device, config_.head_dim,
                                         options_.flash_capable);
  if (li.varlen) li.rows = mask.rows();
  if (li.fused_cpu || li.varlen) {
    // cpu_attention takes the windows, flash varlen the rows, instead.
  } else if (cache != nullptr) {
    DTUNE_CHECK(mask.kind() != AttentionMask::Kind::kPacked,
                "a KV cache takes causal or padding masks, not packed ones");
    const at::Tensor valid =
        mask.kind() == AttentionMask::Kind::kPadding ? mask.tensor() : at::Tensor();
    li.sdpa_mask = mask.build_sdpa_mask(T, cache->begin_step(T, valid));
  } else if (mask.kind() != AttentionMask::Kind::kCausal) {
    li.sdpa_mask = mask.build_sdpa_mask(T, at::Tensor());
  }

  AttentionInputs in = li.view();
  in.cache = cache;
  const bool ckpt = options_.activation_checkpointing && cache == nullptr &&
                    at::GradMode::is_enabled() && num_lora_parameters() > 0;
  if (ckpt && !h.requires_grad()) h.requires_grad_(true);  // so backward reaches the first layer
  const int64_t n_layers = static_cast<int64_t>(layers_.size());
  for (int64_t i = 0; i < n_layers; ++i) {
    in.layer = i;
    w.acquire(layer_unit(i));
    w.prefetch(i + 1 < n_layers ? layer_unit(i + 1) : final_norm_unit());
    if (ckpt && i % options_.checkpoint_every == 0) {
      // The closure owns what recomputation needs (cos, sin, mask) until backward.
      const DecoderLayer* layer = &layers_[i];
      const bool training = training_;
      // Without an adapter, down_proj's backward needs only its frozen weight: run it outside
      // the checkpoint, and backward neither keeps its input nor re-runs it (what transformers'
      // non-reentrant checkpoint gets by stopping the recomputation early).
      const bool down_outside = !layer->mlp.down_proj.has_adapter();
      const std::vector<at::Tensor> outs = checkpoint(
          [layer, li, down_outside](const at::Tensor& x) {
            const AttentionInputs rin = li.view();
            if (!down_outside) return std::vector<at::Tensor>{layer->forward(x, rin)};
            auto [a, m] = layer->forward_to_down_proj(x, rin);
            return std::vector<at::Tensor>{std::move(a), std::move(m)};
          },
          h);
      h = down_outside ? outs[0] + layer->mlp.down_proj.forward(outs[1], training) : outs[0];
    } else {
      h = layers_[i].forward(h, in);
    }
    w.release(layer_unit(i));
    if (backward_acquires && h.requires_grad())
      h = acquire_in_backward(h, layer_unit(i), i > 0 ? std::optional<size_t>(layer_unit(i - 1)) : std::nullopt);
  }
  if (cache != nullptr) cache->end_step();
  w.acquire(final_norm_unit());
  at::Tensor out = rms_norm(h, final_norm_, config_.rms_norm_eps, kernels);
  w.release(final_norm_unit());
  if (backward_acquires && out.requires_grad())
    out = acquire_in_backward(out, final_norm_unit(),
                              n_layers > 0 ? std::optional<size_t>(layer_unit(n_layers - 1)) : std::nullopt);
  return out;
}

at::Tensor Decoder::logits(const at::Tensor& hidden) const {
  weights_->acquire(lm_head_unit());
  at::Tensor out = use_cpu_gemv(options_.kernels, hidden, lm_head_, at::Tensor())
                       ? cpu_gemv(hidden, lm_head_, at::Tensor())
                       : at::matmul(hidden, lm_head_.t());
  // A backward through these logits needs the head: it stays acquired until the next forward.
  if (!(at::GradMode::is_enabled() && out.requires_grad())) weights_->release(lm_head_unit());
  return out;
}

LossSum Decoder::loss(const at::Tensor& hidden, const at::Tensor& labels, bool labels_shifted) const {
  DTUNE_CHECK(hidden.dim() == 3 && labels.dim() == 2 && hidden.size(0) == labels.size(0) &&
                  hidden.size(1) == labels.size(1),
              "loss: hidden (B, T, H) and labels (B, T) must agree, got ",
              shape_str(hidden.sizes()), " and ", shape_str(labels.sizes()));
  return loss(hidden, select_loss_targets(labels, labels_shifted));
}

LossSum Decoder::loss(const at::Tensor& hidden, const LossTargets& targets) const {
  DTUNE_CHECK(hidden.dim() == 3, "loss: hidden must be (B, T, H), got ", shape_str(hidden.sizes()));
  DTUNE_CHECK(targets.positions.dim() == 1 && targets.targets.sizes() == targets.positions.sizes() &&
                  targets.count == targets.positions.size(0),
              "loss: LossTargets positions and targets must both be (N) with N = count");
  const LossTargets t = targets.to(hidden.device());
  const at::Tensor h = hidden.reshape({-1, hidden.size(2)}).index_select(0, t.positions);  // (N, H)
  LossSum out;
  out.num_tokens = t.count;
  // Its backward needs no LM head (the gradient w.r.t. hidden is computed here, lm_loss.h).
  weights_->acquire(lm_head_unit());
  out.sum = chunked_lm_loss_sum(h, lm_head_, t.targets, options_.loss_chunk_size, options_.kernels);
  weights_->release(lm_head_unit());
  return out;
}

NamedLinears Decoder::named_linears() {
  NamedLinears out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Attention& a = layers_[i].attention;
    Mlp& m = layers_[i].mlp;
    out.emplace_back(p + "self_attn.q_proj", &a.q_proj);
    out.emplace_back(p + "self_attn.k_proj", &a.k_proj);
    out.emplace_back(p + "self_attn.v_proj", &a.v_proj);
    out.emplace_back(p + "self_attn.o_proj", &a.o_proj);
    out.emplace_back(p + "mlp.gate_proj", &m.gate_proj);
    out.emplace_back(p + "mlp.up_proj", &m.up_proj);
    out.emplace_back(p + "mlp.down_proj", &m.down_proj);
  }
  return out;
}

void Decoder::add_lora(const LoraOptions& options, uint64_t seed) {
  attach_lora(named_linears(), options, seed);
}

std::vector<std::pair<std::string, at::Tensor>> Decoder::lora_parameters() {
  return dtune::lora_parameters(named_linears());
}

void Decoder::load_lora(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  dtune::load_lora(named_linears(), tensors);
}

void Decoder::merge_lora() {
  DTUNE_CHECK(!weights_->collective(), "merging LoRA into sharded base weights is not supported; merge with "
              "`dtune merge` (one process, the whole model) instead");
  dtune::merge_lora(named_linears());
}

KVCache Decoder::make_kv_cache(int64_t batch, int64_t max_len) const {
  return KVCache(static_cast<int64_t>(layers_.size()), batch, config_.num_key_value_heads, max_len,
                 config_.head_dim, options_.dtype, options_.device);
}

std::vector<const LoraLinear*> Decoder::linears() const {
  std::vector<const LoraLinear*> out;
  for (const auto& l : layers_) {
    out.insert(out.end(), {&l.attention.q_proj, &l.attention.k_proj, &l.attention.v_proj,
                           &l.attention.o_proj, &l.mlp.gate_proj, &l.mlp.up_proj, &l.mlp.down_proj});
  }
  return out;
}

int64_t Decoder::num_parameters() const {
  int64_t n = embed_tokens_.numel() + final_norm_.numel();
  if (!config_.tie_word_embeddings) n += lm_head_.numel();
  for (const auto& l : layers_) n += l.input_norm.numel() + l.post_attention_norm.numel();
  for (const LoraLinear* p : linears()) {
    n += p->weight().numel() + (p->bias().defined() ? p->bias().numel() : 0);
  }
  return n;
}

int64_t Decoder::num_lora_parameters() const {
  int64_t n = 0;
  for (const LoraLinear* p : linears()) {
    if (p->has_adapter()) n += p->lora_a().numel() + p->lora_b().numel();
  }
  return n;
}

}  // namespace dtune
