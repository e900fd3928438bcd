// Whole-model adapter operations: attach, PEFT-named parameter list, load, merge.
#include "dtune/lora/lora_adapter.h"

#include <algorithm>
#include <map>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include "dtune/core/error.h"
#include "dtune/lora/lora_linear.h"

namespace dtune {

at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, double scale) {
  DTUNE_CHECK(A.dim() == 2 && B.dim() == 2 && B.size(1) == A.size(0), "lora_delta: shapes ", A.sizes(), " and ",
              B.sizes(), " are not (r, in) and (out, r)");
  return at::matmul(B.to(at::kFloat), A.to(at::kFloat)).mul_(scale);
}

at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, const LoraOptions& options) {
  return lora_delta(A, B, options.scale());
}

void attach_lora(const NamedLinears& linears, const LoraOptions& options, uint64_t seed) {
  validate(options, OptionNames::config_section("lora"));
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int64_t attached = 0;
  for (const auto& [path, linear] : linears) {
    if (!options.targets(path)) continue;
    linear->add_adapter(options.r, options.scale(), options.dropout, gen);
    ++attached;
  }
  DTUNE_CHECK(attached > 0, "lora.target_modules matched no layer of the model");
}

void attach_lora_weights(const NamedLinears& linears, const std::vector<LoraModuleWeights>& modules,
                         double dropout) {
  DTUNE_CHECK(!modules.empty(), "attach_lora_weights: the adapter holds no module");
  std::map<std::string, LoraLinear*> by_path(linears.begin(), linears.end());
  // Every module is checked before any is attached: a refused adapter leaves the model as it was.
  std::vector<LoraLinear*> targets;
  for (const LoraModuleWeights& m : modules) {
    auto it = by_path.find(m.module);
    DTUNE_CHECK(it != by_path.end(), "the adapter adapts ", m.module,
                ", which is not a projection of this model (an adapter for another architecture or depth?)");
    const LoraLinear& l = *it->second;
    DTUNE_CHECK(!l.has_adapter(), m.module, " already has an adapter");
    DTUNE_CHECK(m.a.dim() == 2 && m.b.dim() == 2 && m.b.size(1) == m.a.size(0) && m.a.size(1) == l.in_features() &&
                    m.b.size(0) == l.out_features(),
                m.module, ": LoRA weights of shapes ", shape_str(m.a.sizes()), " and ", shape_str(m.b.sizes()),
                " do not fit its (out, in) = (", l.out_features(), ", ", l.in_features(), "): expected (r, ",
                l.in_features(), ") and (", l.out_features(), ", r)");
    targets.push_back(it->second);
  }
  for (size_t i = 0; i < modules.size(); ++i)
    targets[i]->add_adapter(modules[i].a, modules[i].b, modules[i].scale, dropout);
}

std::vector<std::pair<std::string, at::Tensor>> lora_parameters(const NamedLinears& linears) {
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& [path, linear] : linears) {
    if (!linear->has_adapter()) continue;
    params.emplace_back(peft_lora_key(path, LoraMatrix::kA), linear->lora_a());
    params.emplace_back(peft_lora_key(path, LoraMatrix::kB), linear->lora_b());
  }
  return params;
}

void load_lora(const NamedLinears& linears,
               const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  std::map<std::string, at::Tensor> by_key;
  for (const auto& [key, t] : tensors) {
    DTUNE_CHECK(by_key.emplace(key, t).second, "load_lora: duplicate adapter key ", key);
  }
  auto live = lora_parameters(linears);
  DTUNE_CHECK(!live.empty(), "load_lora: the model has no adapter attached; attach_lora first");
  at::NoGradGuard no_grad;
  for (auto& [key, param] : live) {
    auto it = by_key.find(key);
    DTUNE_CHECK(it != by_key.end(), "load_lora: adapter tensor ", key,
                " is missing; the saved adapter must target the same modules (lora.target_modules)");
    DTUNE_CHECK(it->second.sizes() == param.sizes(), "load_lora: ", key, " has shape ",
                shape_str(it->second.sizes()), ", expected ", shape_str(param.sizes()),
                " (check lora.r and the base model)");
    param.copy_(it->second.to(param.device(), param.scalar_type()));
    by_key.erase(it);
  }
  DTUNE_CHECK(by_key.empty(), "load_lora: adapter tensor ", by_key.begin()->first,
              " matches no adapted module of the model (lora.target_modules differs?)");
}

void merge_lora(const NamedLinears& linears) {
  for (const auto& entry : linears) entry.second->merge_adapter();
}

}  // namespace dtune
