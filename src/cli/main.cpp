// dtune's entry point: dispatches to a subcommand and is the one place that catches errors.
#include <cstdio>
#include <cstring>
#include <string>

#include "dtune/cli/commands.h"
#include "dtune/core/error.h"
#include "dtune/dist/job_guard.h"

namespace {

using dtune::cli::Command;

// The subcommands, one per src/cli/<name>_command.cpp; `dtune --help` prints this table.
constexpr Command kCommands[] = {
    {"config", "resolve, validate and print a run config (INI + --section.key=value)", dtune::cli::run_config},
    {"train", "LoRA fine-tuning under MPI: mpirun -np N dtune train --config X.ini", dtune::cli::run_train},
    {"info", "show the build: version, libtorch, MPI, CUDA/NCCL, visible devices", dtune::cli::run_info},
    {"generate", "text from a model (+ adapter) with a KV cache and the recipe's sampling knobs", dtune::cli::run_generate},
    {"merge", "fold a PEFT LoRA adapter into its base model: a plain Hugging Face folder", dtune::cli::run_merge},
    {"pretokenize", "tokenize a JSON/JSONL dataset through a prompt template into one HDF5 file", dtune::cli::run_pretokenize},
    {"tokenize", "JSON Lines text -> token ids (or ids -> text with --decode), tokenizers-exact", dtune::cli::run_tokenize},
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
