// `dtune config`: resolve a config (INI file + --section.key=value overrides), validate it and
// print it, so a job script can be checked on a login node before it is submitted.
#include <cstdio>
#include <filesystem>

#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"
#include "dtune/data/hdf5_dataset.h"
#include "dtune/io/model_config.h"
#include "dtune/train/memory_estimate.h"

namespace dtune::cli {

int run_config(int argc, char** argv) {
  po::options_description own("dtune config --config FILE.ini [--section.key=value ...]");
  own.add_options()("help,h", "show this help")("config", po::value<std::string>(), "INI file (see configs/)")(
      "no-validate", "print without validating")(
      "get", po::value<std::string>(), "print only this option's value (section.key), e.g. for job scripts")(
      "memory", "print the predicted memory per GPU (model.path's config.json) and refuse a config that does not fit")(
      "world-size", po::value<int64_t>()->default_value(1), "with --memory: ranks (GPUs) of the job")(
      "ranks-per-node", po::value<int64_t>()->default_value(0), "with --memory: GPUs per node (0 = --world-size)")(
      "gpu-memory-gib", po::value<double>()->default_value(80.0), "with --memory: memory of one GPU (80 = H100)")(
      "max-length", po::value<int64_t>()->default_value(0),
      "with --memory: tokens per row (0 = data.pack_length when packing, else data.path's max_length)");
  po::variables_map vm;
  std::vector<std::string> overrides;  // everything not ours; load_config reports unknown ones by name
  if (const auto exit_code = parse_args_with_overrides("config", own, argc, argv, vm, overrides)) return *exit_code;
  const Config config = load_config(vm.count("config") ? vm["config"].as<std::string>() : "", overrides);
  if (!vm.count("no-validate")) validate(config);
  if (vm.count("get")) {
    std::printf("%s\n", config_value(config, vm["get"].as<std::string>()).c_str());
    return kExitOk;
  }
  if (!vm.count("memory")) {
    std::fputs(format_config(config).c_str(), stdout);
    return kExitOk;
  }
  const ModelConfig model = load_model_config(config.model.path);
  const int64_t world = vm["world-size"].as<int64_t>();
  const int64_t per_node = vm["ranks-per-node"].as<int64_t>() > 0 ? vm["ranks-per-node"].as<int64_t>() : world;
  DTUNE_CHECK(world >= 1 && world % per_node == 0, "--world-size ", world, " must be a multiple of --ranks-per-node ",
              per_node);
  int64_t length = vm["max-length"].as<int64_t>();
  if (length <= 0 && config.data.packing) length = config.data.pack_length;
  if (length <= 0) {
    DTUNE_CHECK(std::filesystem::exists(config.data.path), "--memory needs the tokens per row: data.path ",
                config.data.path, " does not exist yet; pass --max-length (pretokenize's --max-length)");
    length = Hdf5Dataset::read_info(config.data.path).max_length;
  }
  const MemoryEstimate e =
      estimate_memory(model, config, world, per_node, length, lora_parameter_count(model, config));
  const double gib = e.total() / 1073741824.0;
  const double capacity = vm["gpu-memory-gib"].as<double>();
  std::printf("predicted memory per GPU (%s, %s, train.sharding=%s over %lld ranks, %lld tokens x %lld rows):\n%s",
              config.model.path.c_str(), config.train.precision.c_str(), config.train.sharding.c_str(),
              static_cast<long long>(e.shard_group), static_cast<long long>(length),
              static_cast<long long>(config.data.micro_batch_size), format_memory_estimate(e).c_str());
  DTUNE_CHECK(gib <= capacity, "the config needs about ", gib, " GiB per GPU but a GPU has ", capacity,
              " GiB (--gpu-memory-gib): ",
              e.base > e.activations ? "shard the frozen base over more GPUs (train.sharding=hybrid with more GPUs per "
                                       "node, or train.sharding=full)"
                                     : "turn on train.gradient_checkpointing (with train.activation_checkpoint_every=1)",
              ", or lower data.micro_batch_size (raising train.gradient_accumulation_steps), or shorten the rows "
              "(pretokenize --max-length, data.pack_length)");
  return kExitOk;
}

}  // namespace dtune::cli
