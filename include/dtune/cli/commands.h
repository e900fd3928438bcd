// The subcommands of the dtune binary. Each takes the arguments after its name
// (argv[0] is the subcommand name) and returns the process exit code.
#pragma once

namespace dtune::cli {

struct Command {
  const char* name;
  const char* summary;  // one line for `dtune --help`
  int (*run)(int argc, char** argv);
};

// Defined in src/cli/<name>_command.cpp.
int run_tokenize(int argc, char** argv);
int run_pretokenize(int argc, char** argv);
int run_train(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_info(int argc, char** argv);
int run_config(int argc, char** argv);

}  // namespace dtune::cli
