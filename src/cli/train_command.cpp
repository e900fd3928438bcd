// `dtune train`: data-parallel LoRA training under MPI (mpirun/srun start one rank per GPU, or
// several CPU ranks). Config from --config plus --section.key=value overrides.
#include <cstdio>

#include "dtune/cli/command_line.h"
#include "dtune/cli/commands.h"
#include "dtune/config/config_parser.h"
#include "dtune/core/error.h"
#include "dtune/core/log.h"
#include "dtune/dist/mpi_env.h"
#include "dtune/train/trainer.h"

namespace dtune::cli {

int run_train(int argc, char** argv) {
  po::options_description own(
      "mpirun -np N dtune train --config configs/X.ini [--section.key=value ...]\n\n"
      "Exit codes: 0 done, 1 error, 2 usage, 75 checkpointed after SIGTERM/SIGUSR1 (requeue)");
  own.add_options()("help,h", "show this help")("config", po::value<std::string>(), "INI file (see configs/)")(
      "print-config", "print the resolved config and exit")(
      "resume", po::value<std::string>()->implicit_value("latest"),
      "continue from the latest checkpoint in checkpoint.output_dir, or from a given checkpoint-STEP "
      "folder (same as --checkpoint.resume=...)");
  po::variables_map vm;
  std::vector<std::string> overrides;
  if (const auto exit_code = parse_args_with_overrides("train", own, argc, argv, vm, overrides)) return *exit_code;
  if (vm.count("resume")) overrides.push_back("--checkpoint.resume=" + vm["resume"].as<std::string>());
  // Config errors surface here, before MPI, the model or the data are touched.
  const Config config = load_config(vm.count("config") ? vm["config"].as<std::string>() : "", overrides);
  if (vm.count("print-config")) {
    std::fputs(format_config(config).c_str(), stdout);
    return kExitOk;
  }
  validate(config);
  int mpi_argc = 0;
  char** mpi_argv = nullptr;
  dist::MpiEnv env(&mpi_argc, &mpi_argv, config.train.collective_timeout);
  return run_training(config, env);
}

}  // namespace dtune::cli
