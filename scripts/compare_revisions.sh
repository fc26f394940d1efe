#!/usr/bin/env bash
# A preset from an empty store at two commits, one after the other (run it on a machine with nothing else running:
# two processes sharing the cores slow torch's threads several-fold). Each commit runs from its own git worktree
# with a fresh BENCH_HOME, through this checkout's .venv; the dry-run estimate of the second commit comes first.
#   bash scripts/compare_revisions.sh BEFORE AFTER [preset] [folder] [bench matrix options...]
# Prints each run's seconds; the runs' reports (timing table) are under folder/<commit>/reports. Options after the
# folder go to both runs, e.g. `--models O:SOFTMAX:CE --attacks lbfgs` to compare one attack's cells.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 preset=${3:-quick} root=${4:-/tmp/bench-compare}
shift $(( $# < 4 ? $# : 4 ))
py="$PWD/.venv/bin/python"
mkdir -p "$root"
for rev in "$after" "$before"; do
  tree="$root/$rev/src"
  [ -d "$tree" ] || git worktree add -q "$tree" "$rev"
  export BENCH_HOME="$root/$rev/home"
  rm -rf "$BENCH_HOME"
  if [ "$rev" = "$after" ]; then
    (cd "$tree" && "$py" -m bench matrix --dataset mnist --preset "$preset" --dry-run --out "$BENCH_HOME/run" "$@" | tail -3)
  fi
  start=$(date +%s)
  (cd "$tree" && "$py" -m bench matrix --dataset mnist --preset "$preset" --no-progress --out "$BENCH_HOME/run" \
    --reports-dir "$root/$rev/reports" "$@" > "$root/$rev/matrix.log" 2>&1)
  echo "$rev: $preset preset from an empty store in $(( $(date +%s) - start )) s"
done
