#!/usr/bin/env bash
# The second GPU benchmark set of issue 12 (QLoRA 65B on one GPU, pretraining at a larger batch with its peer, PPO
# throughput), in one call on the device machine, from the repo root:
#   bash benchmarks/run_gpu_more.sh [seconds]        (results: $OUT or benchmarks/raw; results.jsonl + log.txt)
set -u
source "$(dirname "$0")/lib.sh" "${1:-540}"   # PYTHONPATH, $RES, $LOG, the deadline, bench()
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch,transformers,peft,bitsandbytes;print(torch.__version__,transformers.__version__,peft.__version__,bitsandbytes.__version__)"; } 2>&1 | tee -a "$LOG"
# 65B QLoRA, one GPU capped at 80 GiB: seq 2048 and 16k with kept inputs on the GPU, 32k with them in host memory
bench 300 qlora --shape 65b --seqs 2048,16384,32768 --offload 0,0,1 --steps 1 --warmup 1 --mem-cap-gib 80 --deadline-s 200 --progress 1
bench 110 pretrain --variant peer
bench 120 pretrain --variant ours --attn cudnn --batch 32
bench 90 ppo --shape 1b --batch-size 64 --minibatch-size 16 --max-new-tokens 128 --steps 2 --warmup 1
bench 90 ppo --shape 1b --batch-size 256 --minibatch-size 32 --max-new-tokens 128 --steps 1 --warmup 1
grep -h '^{' "$RES" | python3 -c "import sys,json; [print({k:v for k,v in json.loads(l).items() if k not in ('quantized','config','losses','sync_messages')}) for l in sys.stdin]"
