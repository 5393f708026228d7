# Shared by the benchmark scripts (sourced, not run): environment, result files, a deadline, and `bench`, which runs
# one `python -m llm_methods.bench ...` with its own time cap inside the deadline and logs it.
#   source benchmarks/lib.sh SECONDS_BUDGET
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
D=${OUT:-benchmarks/raw}; mkdir -p "$D"; RES=$D/results.jsonl; LOG=$D/log.txt
deadline=$((SECONDS + ${1:-540}))
bench() {  # max_seconds, then the arguments of python -m llm_methods.bench
  local cap=$1; shift; local left=$((deadline - SECONDS))
  if [ $left -lt 45 ]; then echo "SKIPPED (out of time): $*" | tee -a "$LOG"; return 9; fi
  [ $cap -gt $left ] && cap=$left
  echo "=== $(date -u +%FT%TZ) python -m llm_methods.bench $* --out $RES (cap ${cap}s)" | tee -a "$LOG"
  timeout $cap python -m llm_methods.bench "$@" --out "$RES" >>"$LOG" 2>&1; local rc=$?
  echo "rc=$rc after $SECONDS s" | tee -a "$LOG"; return $rc
}
