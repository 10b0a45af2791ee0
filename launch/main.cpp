// The ptune command line: one subcommand per job. Errors from the library
// are printed with their context and turn into a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <vector>

#include <unistd.h>

#include <cstdlib>

#include "commands.h"
#include "framework/ops/cpu/blas_runtime.h"

int main(int argc, char** argv) {
  // OpenBLAS fixes its kernels when it loads: restart once with a better
  // OPENBLAS_CORETYPE if it fell back to generic ones (see blas_runtime.h).
  if (const auto core = ptune::ops::blas_core_override()) {
    setenv("OPENBLAS_CORETYPE", core->c_str(), 1);
    execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
  }
  CLI::App app{"ptune: prompt tuning for frozen transformers"};
  app.require_subcommand(1);
  std::vector<ptune::launch::Command> commands = {
      ptune::launch::add_inspect(app),
      ptune::launch::add_init_model(app),
      ptune::launch::add_train(app),
      ptune::launch::add_eval(app),
      ptune::launch::add_predict(app),
      ptune::launch::add_export(app),
      ptune::launch::add_bench(app),
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
