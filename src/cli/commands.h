// Each `minnow` subcommand lives in its own cmd_<name>.cpp and registers itself on the
// CLI11 app here; main.cpp only lists them. Diagnostics go to stderr, results to stdout.
#pragma once

#include <CLI/CLI.hpp>

namespace minnow::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_detokenize(CLI::App& app);
void register_template(CLI::App& app);
void register_logits(CLI::App& app);
void register_run(CLI::App& app);
void register_bench(CLI::App& app);
void register_serve(CLI::App& app);
void register_store(CLI::App& app);  // create, list, show, cp, rm, pull, ps
void register_eval(CLI::App& app);
void register_router(CLI::App& app);  // check, report

}  // namespace minnow::cli
