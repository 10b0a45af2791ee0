// The ptune subcommands. Each registers its options on the CLI11 app and
// returns the function that runs it; main() catches what they throw.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ptune::launch {

using Command = std::function<int()>;

Command add_inspect(CLI::App& app);
Command add_init_model(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_predict(CLI::App& app);
Command add_export(CLI::App& app);
Command add_generate(CLI::App& app);

}  // namespace ptune::launch
