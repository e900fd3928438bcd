// `dtune merge`: fold a PEFT LoRA adapter into its base model and write a plain HF model folder.
#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/io/dtype_names.h"
#include "dtune/io/merge.h"

namespace dtune::cli {

int run_merge(int argc, char** argv) {
  MergeOptions o;
  std::string shard_size = "2GB";
  po::options_description desc(
      "usage: dtune merge --model M --adapter A --output O [options]\n\n"
      "Adds scale * B @ A of every LoRA module to its base weight (fp32 math) and writes a full\n"
      "Hugging Face folder: config.json, generation_config.json, tokenizer files, and\n"
      "model.safetensors or model-0000k-of-0000n.safetensors + model.safetensors.index.json.\n"
      "The folder appears only when complete (written beside it, then renamed).\n\noptions");
  desc.add_options()
      ("help,h", "show this help")
      ("model", po::value(&o.model_dir)->required(), "base model folder (config.json + *.safetensors)")
      ("adapter", po::value(&o.adapter_dir)->required(), "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)")
      ("output", po::value(&o.output_dir)->required(), "output folder; replaced if it exists")
      ("dtype", po::value(&o.dtype)->default_value("auto"), "auto (the base weights' dtype) | fp16 | bf16 | fp32")
      ("max-shard-size", po::value(&shard_size)->default_value("2GB"), "largest shard, e.g. 2GB, 500MB, 1GiB");
  po::variables_map vm;
  if (const auto exit_code = parse_args({"merge", desc}, argc, argv, vm)) return *exit_code;
  if (o.dtype != "auto") dtype_from_name(o.dtype, "--dtype (auto | fp32 | bf16 | fp16)");  // refused before any work
  o.max_shard_bytes = parse_byte_size(shard_size);
  const MergeReport r = merge_adapter(o);
  log::info(str("merged ", r.merged_weights, " of ", r.total_weights, " weights into ", o.output_dir, " (",
                r.dtype, ", ", r.total_bytes, " bytes in ", r.shards, r.shards == 1 ? " file)" : " shards)"));
  return kExitOk;
}

}  // namespace dtune::cli
