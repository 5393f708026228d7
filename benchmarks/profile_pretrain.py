"""Where the compiled pretraining step of `llm_methods.bench` spends its GPU time (issue 12's 'what limits it').

python benchmarks/profile_pretrain.py [attn=cudnn] [batch=32] [out_dir]   (on a GPU machine, from the repo root)
Builds the 1.1B TinyLlama-shape model exactly as `python -m llm_methods.bench pretrain --variant ours` does, warms up
(compilation), profiles two optimizer steps with torch.profiler and prints the GPU time by kernel family and the top kernels.
"""
import sys, json, re, time, collections
import torch
from llm_methods.bench import BenchConfig, build_model, compile_for_training, set_sdpa_backend, _make_step, _tokens, _sync

attn = sys.argv[1] if len(sys.argv) > 1 else "cudnn"; batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
out = sys.argv[3] if len(sys.argv) > 3 else None
cfg = BenchConfig(which="pretrain", variant="ours", attn=attn, batch=batch)
dev = torch.device("cuda"); set_sdpa_backend(attn)
model = build_model(cfg, dev); compile_for_training(model)
step, opt = _make_step(model, cfg, dev, hf_loss=False)
data = _tokens(cfg, 2, batch, dev, 32000)
for i in range(3): step(data[i % 2])
_sync(dev); t = time.perf_counter()
for i in range(3): step(data[i % 2])
_sync(dev); step_s = (time.perf_counter() - t) / 3
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for i in range(2): step(data[i % 2])
    _sync(dev)
FAMILIES = [("attention", r"flash|fmha|cudnn|sdpa|attn"), ("gemm", r"gemm|nvjet|xmma|cutlass|sm90|cublas"),
            ("optimizer", r"multi_tensor|adam|foreach"), ("fused pointwise (triton)", r"^triton"), ("copy/cast", r"copy|cast|elementwise"),
            ("reduce", r"reduce"), ("other", r".")]
fam, kern = collections.Counter(), collections.Counter()
for e in prof.key_averages():
    us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
    if not us or e.device_type.name != "CUDA": continue
    kern[e.key[:110]] += us
    fam[next(n for n, rx in FAMILIES if re.search(rx, e.key, re.I))] += us
total = sum(fam.values())
res = dict(attn=attn, batch=batch, step_s=step_s, tokens_per_s=batch * 2048 / step_s, gpu_busy_ms_per_step=total / 2e3,
           device=torch.cuda.get_device_name(), families_ms_per_step={k: v / 2e3 for k, v in fam.most_common()},
           top_kernels_ms_per_step={k: v / 2e3 for k, v in kern.most_common(25)})
print(json.dumps(res, indent=1))
if out:
    with open(f"{out}/profile_{attn}_{batch}.json", "w") as f: json.dump(res, f, indent=1)
