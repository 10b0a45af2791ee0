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
#include "framework/dist/mpi_communicator.h"
#include "framework/ops/cpu/blas_runtime.h"

int main(int argc, char** argv) {
  // OpenBLAS fixes its kernels when it loads: restart once with a better
  // OPENBLAS_CORETYPE if it fell back to generic ones (see blas_runtime.h).
  if (const auto core = ptune::ops::blas_core_override()) {
    setenv("OPENBLAS_CORETYPE", core->c_str(), 1);
    execv("/proc/self/exe", argv);  // returns only on failure: carry on as we are
  }
  // Under mpirun/srun: MPI for the whole process (finalised at exit).
  ptune::dist::MpiSession mpi(&argc, &argv);
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
      ptune::launch::add_generate(app),
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
    if (!mpi.active()) {
      fmt::print(stderr, "ptune: error: {}\n", e.what());
      return 1;
    }
    // One rank failed: say which and why, then bring every rank down now
    // rather than leave the others waiting in a collective.
    fmt::print(stderr, "ptune: rank {}: error: {}\n", mpi.communicator().rank(), e.what());
    std::fflush(stderr);
    mpi.abort(1);
  }
  return 0;
}
