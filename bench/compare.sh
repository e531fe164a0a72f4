#!/usr/bin/env bash
# Speed side by side: llama.cpp's llama-bench and `minnow bench` on the same models, same
# thread count, same test shapes (pp512 = prompt processing of 512 tokens, tg128 = generating
# 128 tokens one at a time), in one run, so both see the same machine load.
#
#   bench/compare.sh [MODEL...]          # default: both real models of the model cache
#   bench/compare.sh --llama-only        # llama.cpp's half alone (e.g. before minnow bench exists)
#
# Prints per model and test: llama.cpp tok/s ± sd, minnow tok/s ± sd, the ratio minnow/llama.cpp,
# and the peak RSS of each process (measured the same way for both: the child's ru_maxrss).
# Also prints the CPU, minnow's kernel target and the load average before and after: figures
# taken on a loaded machine are not comparable with quiet ones.
#
# Environment: MINNOW_BIN (default build/minnow), LLAMA_BENCH (default: built or found by
# bench/build_llama_cpp.sh), MINNOW_CACHE, BENCH_THREADS (2), BENCH_REPS (5), BENCH_P (512),
# BENCH_N (128), BENCH_ROUNDS (1).
#
# On a shared machine other processes steal cores mid-run (llama.cpp's OpenMP threads spin and
# suffer most). BENCH_ROUNDS=N runs the llama.cpp/minnow pair N times per model, alternating,
# and keeps for each side its best round (highest mean tok/s): interference only ever slows a
# run down, so the best round is the closest to the machine's real speed.
# Exit status: 0 when every run succeeded, 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cache="${MINNOW_CACHE:-$HOME/.cache/minnow/models}"

llama_only=0
models=()
for arg in "$@"; do
  case "$arg" in
    --llama-only) llama_only=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) models+=("$arg") ;;
  esac
done
if [[ ${#models[@]} -eq 0 ]]; then
  models=("$cache/SmolLM2-135M-Instruct.Q4_1.gguf" "$cache/gemma-3-270m-q4_k_m.gguf")
fi

llama_bench="${LLAMA_BENCH:-}"
if [[ -z "$llama_bench" ]]; then
  llama_bench="$("$here/build_llama_cpp.sh" | tail -n 1)"
fi
minnow_bin="${MINNOW_BIN:-$root/build/minnow}"
if [[ $llama_only -eq 0 && ! -x "$minnow_bin" ]]; then
  echo "compare: $minnow_bin is not built (scripts/quickstart.sh), or use --llama-only" >&2
  exit 1
fi

exec python3 - "$llama_bench" "$minnow_bin" "$llama_only" \
  "${BENCH_THREADS:-2}" "${BENCH_REPS:-5}" "${BENCH_P:-512}" "${BENCH_N:-128}" \
  "${BENCH_ROUNDS:-1}" \
  "${models[@]}" <<'PY'
import json
import os
import resource
import subprocess
import sys

llama_bench, minnow_bin, llama_only = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
threads, reps, n_p, n_n = sys.argv[4:8]
rounds = int(sys.argv[8])
models = sys.argv[9:]
failed = []


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(cmd: list[str]) -> tuple[int, str, str, int]:
    """Runs cmd alone in a fresh child; returns (status, stdout, stderr, peak RSS bytes).
    Linux ru_maxrss is in KiB; each run forks its own helper so the maximum is this command's."""
    helper = ("import resource,subprocess,sys;"
              "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
              "sys.stdout.write(p.stdout);sys.stderr.write(p.stderr);"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024,file=sys.stderr);"
              "sys.exit(p.returncode)")
    p = subprocess.run([sys.executable, "-c", helper, *cmd], capture_output=True, text=True)
    err_lines = p.stderr.rstrip("\n").split("\n")
    rss = int(err_lines[-1]) if err_lines and err_lines[-1].isdigit() else 0
    return p.returncode, p.stdout, "\n".join(err_lines[:-1]), rss


def cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def fmt(r) -> str:
    return f"{r['avg_ts']:9.2f} ± {r['stddev_ts']:6.2f}" if r else f"{'n/a':>18}"


def mib(n: int) -> str:
    return f"{n / 2**20:7.1f} MiB" if n else f"{'n/a':>11}"


print(f"cpu            {cpu_name()} ({os.cpu_count()} cpus)")
print(f"threads        {threads}   repetitions {reps}   tests pp{n_p} tg{n_n}   "
      f"rounds {rounds}{' (best kept)' if rounds > 1 else ''}")
print(f"llama-bench    {llama_bench}")
print(f"minnow         {'(skipped: --llama-only)' if llama_only else minnow_bin}")
print(f"load average   {loadavg()} (before)")

rows = []
kernel_target = None
llama_cpu = None
for model in models:
    name = os.path.basename(model)
    if not os.path.isfile(model):
        failed.append(f"{model}: no such file")
        continue
    llama, mine = {}, {}  # test -> best round's result
    llama_rss = minnow_rss = minnow_self_rss = 0

    def keep(best: dict, test: str, r: dict) -> None:
        if test not in best or r["avg_ts"] > best[test]["avg_ts"]:
            best[test] = r

    for _ in range(rounds):
        st, out, err, rss = run([llama_bench, "-m", model, "-p", n_p, "-n", n_n, "-r", reps,
                                 "-t", threads, "-o", "json"])
        llama_rss = max(llama_rss, rss)
        if st == 0:
            for r in json.loads(out):
                keep(llama, f"pp{r['n_prompt']}" if r["n_gen"] == 0 else f"tg{r['n_gen']}", r)
                llama_cpu = r.get("cpu_info", llama_cpu)
        else:
            failed.append(f"llama-bench on {name} failed ({st}): {err.strip()[-500:]}")
        if llama_only:
            continue
        st, out, err, rss = run([minnow_bin, "bench", model, "-p", n_p, "-n", n_n,
                                 "-r", reps, "--threads", threads, "--json"])
        minnow_rss = max(minnow_rss, rss)
        if st == 0:
            obj = json.loads(out)
            kernel_target = obj.get("kernel_target", kernel_target)
            minnow_self_rss = max(minnow_self_rss, obj.get("peak_rss_bytes", 0))
            for r in obj["results"]:
                keep(mine, r["test"], r)
        else:
            failed.append(f"minnow bench on {name} failed ({st}): {err.strip()[-500:]}")
    for test in (f"pp{n_p}", f"tg{n_n}"):
        a, b = llama.get(test), mine.get(test)
        ratio = f"{b['avg_ts'] / a['avg_ts']:6.2f}x" if a and b else f"{'n/a':>7}"
        rows.append((name, test, fmt(a), fmt(b), ratio, mib(llama_rss), mib(minnow_rss),
                     mib(minnow_self_rss)))

print(f"load average   {loadavg()} (after)")
print(f"kernel target  minnow: {kernel_target or 'n/a'}; llama.cpp cpu_info: {llama_cpu or 'n/a'}")
print()
head = ("model", "test", "llama.cpp tok/s", "minnow tok/s", "ratio", "llama RSS", "minnow RSS",
        "(minnow says)")
widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
for r in [head, *rows]:
    print("  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths))))
print("\nratio = minnow / llama.cpp (higher is better for minnow); RSS = peak resident set of "
      "each benchmark process (ru_maxrss);\n"
      "(minnow says) = peak_rss_bytes from minnow bench --json")
for f in failed:
    print(f"FAILED: {f}", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
