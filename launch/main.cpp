// The ptune command line: one subcommand per job. Errors from the library
// are printed with their context and turn into a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ptune: prompt tuning for frozen transformers"};
  app.require_subcommand(1);
  std::vector<ptune::launch::Command> commands = {
      ptune::launch::add_inspect(app),
      ptune::launch::add_init_model(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& run : commands) {
      const int rc = run();
      if (rc >= 0) return rc;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "ptune: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
