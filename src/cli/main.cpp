// dtune's entry point: dispatches to a subcommand and is the one place that catches errors.
#include <cstdio>
#include <cstring>
#include <string>

#include "dtune/cli/commands.h"
#include "dtune/core/error.h"
#include "dtune/dist/job_guard.h"

namespace {

using dtune::cli::Command;

// Only subcommands that exist are listed; `dtune --help` prints this table.
constexpr Command kCommands[] = {
    {"config", "resolve, validate and print a run config (INI + --section.key=value)", dtune::cli::run_config},
    {"info", "show the build: version, libtorch, MPI, CUDA/NCCL, visible devices", dtune::cli::run_info},
};

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "dtune %s - LoRA fine-tuning of decoder LLMs (libtorch, MPI, NCCL, HDF5)\n\n"
               "usage: dtune <command> [options]      (dtune <command> --help for its options)\n\n"
               "commands:\n",
               DTUNE_VERSION);
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return dtune::kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return dtune::kExitOk;
  }
  if (name == "--version") {
    std::printf("dtune %s\n", DTUNE_VERSION);
    return dtune::kExitOk;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    return dtune::dist::run_guarded([&] { return c.run(argc - 1, argv + 1); });
  }
  std::fprintf(stderr, "dtune: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return dtune::kExitUsage;
}
