#!/usr/bin/env bash
# Runs every fuzz target (or those in FUZZ_TARGETS) for FUZZ_SECONDS seconds
# each (default 60), one after the other, starting from the seeds in
# corpus/<target> and keeping what it finds in work/corpus/<target>, so the
# committed seeds stay as they are. An input that panics, or that takes
# more than a second, is saved under artifacts/<target>/ and fails the run
# once every target has had its turn. See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-60}
target_dir=${FUZZ_TARGET_DIR:-target}
cargo=(cargo +nightly)

if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi

# No sanitizer: the code is safe Rust, where AddressSanitizer finds little
# and costs builds and runs dearly; libFuzzer still catches panics, hangs
# and runaway memory.
options=(--sanitizer none --target-dir "$target_dir")
"${cargo[@]}" fuzz build "${options[@]}"

read -r -a targets <<<"${FUZZ_TARGETS:-$("${cargo[@]}" fuzz list | tr '\n' ' ')}"
failed=()
for target in "${targets[@]}"; do
  mkdir -p "work/corpus/$target" "artifacts/$target"
  log="work/$target.log"
  status=0
  "${cargo[@]}" fuzz run "${options[@]}" "$target" "work/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "$target: ${runs:-?} runs in ${seconds}s, nothing found"
  else
    echo "$target: FAILED after ${runs:-?} runs (exit $status); fuzz/$log ends:"
    tail -n 30 "$log" | sed 's/^/    /'
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
