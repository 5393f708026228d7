#!/usr/bin/env bash
# The GPU benchmark set of issue 12, peer baselines first, in one call on the device machine:
#   bash benchmarks/run_gpu.sh [seconds]      (from the repo root; results go to $OUT or benchmarks/raw)
# Each run is one process: `python -m llm_methods.bench ...` appends one JSON line to results.jsonl.
set -u
source "$(dirname "$0")/lib.sh" "${1:-540}"   # PYTHONPATH, $RES, $LOG, the deadline, bench()
field() { python3 -c "import json,sys; r=[json.loads(l) for l in open('$RES') if l.strip()]; r=[x for x in r if all(str(x.get(k))==v for k,v in (a.split('=') for a in sys.argv[2:]))]; print(r[-1][sys.argv[1]] if r else '')" "$@"; }
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv; python3 -c "import torch,transformers,peft;print(torch.__version__,transformers.__version__,peft.__version__)"; } | tee -a "$LOG"

bench 60 attn
best=$(python3 -c "import json; r=[json.loads(l) for l in open('$RES') if '\"attn\"' in l and 'tflops' in l]; print(max(r,key=lambda x:x['tflops'])['backend'] if r else 'default')")
echo "fastest SDPA backend: $best" | tee -a "$LOG"
bench 120 pretrain --variant peer
bench 200 pretrain --variant ours --attn "$best" || bench 200 pretrain --variant ours --attn "$best" --fullgraph false
B=$(field batch which=pretrain variant=ours)
bench 100 lora --variant peer
bench 200 lora --variant ours --attn "$best" ${B:+--batch $B}
bench 90 pretrain --variant ours-eager
[ "$best" != flash ] && bench 150 pretrain --variant ours --attn flash ${B:+--batch $B}
python3 - "$RES" <<'PY' | tee -a "$LOG"
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["which"] == "attn": print(f"attn {r['backend']:9} " + (f"{r['tflops']:.0f} TFLOP/s" if "tflops" in r else r.get("error", "")))
    else: print(f"{r['which']:8} {r['variant']:10} attn={r['attn']:8} batch {r['batch']:3}  {r['tokens_per_s']:9,.0f} tok/s  "
                f"MFU {100*r['mfu']:5.1f} %  peak {r['peak_mem_gib']:6.1f} GiB  syncs {r['host_syncs_per_step']}  loss {r['loss_mean']:.3f}")
PY
