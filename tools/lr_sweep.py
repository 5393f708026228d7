"""Learning-rate sweep of a stage at one budget (steps), one seed: the evidence behind each method's default lr.

    python tools/lr_sweep.py --steps 500 --out results/sweeps/lr_sweep.jsonl [--methods sft,lora] [--jobs 4] [--rebuild-base]
    python tools/lr_sweep.py --methods prefix --lrs 0.1 --set num_virtual_tokens=64 prefix_projection=true --out F
    python tools/lr_sweep.py --out results/sweeps/lr_sweep.jsonl --table
    python tools/lr_sweep.py --methods kto --steps 60 --set beta=0.5 --out results/sweeps/preference.jsonl   # a preference stage at DPO's budget

Each run is `llm_methods <stage> --set steps=N lr=X seed=S record=false` in its own process (several at once with --jobs);
one JSON line per run (method, lr, steps, seed, score, per_task, preferred, kl_from_sft, device, seconds) is appended to --out.
"""
import argparse, json, os, subprocess, sys, time, itertools
from concurrent.futures import ThreadPoolExecutor

GRID = {  # learning rates tried per stage (log-spaced around each method's usual range on the tiny base)
    "sft": [3e-4, 1e-3, 3e-3],
    "lora": [3e-3, 1e-2, 2e-2],
    "qlora": [3e-3, 1e-2],
    "adalora": [1e-2, 2e-2, 3e-2],
    "dora": [3e-3, 1e-2, 2e-2],
    "pissa": [1e-3, 3e-3, 1e-2, 2e-2],
    "prompt-tuning": [1e-1, 3e-1, 1.0],
    "ptuning": [3e-3, 1e-2, 3e-2],
    "prefix": [3e-2, 1e-1, 3e-1],
    "dpo": [1e-4, 3e-4, 1e-3],
    "kto": [3e-5, 1e-4, 3e-4],
    "orpo": [1e-4, 3e-4, 1e-3],
    "simpo": [1e-4, 3e-4, 1e-3],
}
PREFERENCE = ("dpo", "kto", "orpo", "simpo")  # swept only when named (--methods), at DPO's budget (--steps 60)
CODE = """
import json, sys, time, importlib
from llm_methods.stages import get_stage
from llm_methods.core import from_dict
st = get_stage(sys.argv[1])
cfg = from_dict(st.config, json.loads(sys.argv[2]))
t0 = time.perf_counter(); r = st.run(cfg)
print("RESULT " + json.dumps(dict(method=sys.argv[1], score=r.score, per_task=r.per_task, preferred=r.gold_preferred, kl_from_sft=r.kl_from_sft,
                                   device=r.device, seconds=round(time.perf_counter() - t0, 1), **json.loads(sys.argv[2]))))
"""

def one(stage, lr, steps, seed, extra=None):
    kw = dict(steps=steps, lr=lr, seed=seed, record=False, progress=False, **(extra or {}))
    p = subprocess.run([sys.executable, "-c", CODE, stage, json.dumps(kw)], capture_output=True, text=True)
    line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None: return {"method": stage, "lr": lr, "steps": steps, "seed": seed, "error": (p.stderr or p.stdout)[-800:]}
    return json.loads(line[7:])

def table(path) -> str:
    "The sweep as markdown: one row per (method, lr), the best lr of each method in bold."
    rows = [json.loads(l) for l in open(path) if l.strip()]
    best = {}
    for r in rows:
        if "score" in r and r["score"] > best.get(r["method"], (-1,))[0]: best[r["method"]] = (r["score"], r["lr"])
    out = ["| method | lr | held-out EM | fact | add | rev | preferred style | s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "score" not in r: out.append(f"| {r['method']} | {r['lr']:g} | failed | | | | | |"); continue
        b = "**" if best[r["method"]][1] == r["lr"] else ""
        pt = " | ".join(f"{r['per_task'].get(t, 0):.0%}" for t in ("fact", "add", "rev"))
        out.append(f"| {r['method']} | {b}{r['lr']:g}{b} | {b}{r['score']:.1%}{b} | {pt} | {r['preferred']:.0%} | {r['seconds']:.0f} |")
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500); ap.add_argument("--seeds", default="0")
    ap.add_argument("--methods", default=",".join(m for m in GRID if m not in PREFERENCE)); ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=1); ap.add_argument("--rebuild-base", action="store_true")
    ap.add_argument("--lrs", default=None, help="comma-separated lrs for every method instead of GRID")
    ap.add_argument("--set", nargs="*", default=[], help="further settings of every run, key=value (JSON values), e.g. num_virtual_tokens=64")
    ap.add_argument("--table", action="store_true", help="print --out as a markdown table and exit")
    a = ap.parse_args()
    if a.table: print(table(a.out)); raise SystemExit
    from llm_methods.base import tiny_base
    tiny_base(rebuild=a.rebuild_base)  # built once, before the runs share it
    runs = [(m, lr, a.steps, int(s)) for m in a.methods.split(",") for lr in ([float(x) for x in a.lrs.split(",")] if a.lrs else GRID[m])
            for s in a.seeds.split(",")]
    with ThreadPoolExecutor(a.jobs) as ex, open(a.out, "a") as f:
        extra = {k: json.loads(v) if v[:1] in "0123456789-[{tfn" else v for k, v in (kv.split("=", 1) for kv in a.set)}
        for r in ex.map(lambda x: one(*x, extra), runs):
            f.write(json.dumps(r) + "\n"); f.flush()
            print(r.get("method"), r.get("lr"), r.get("seed"), r.get("score", r.get("error", "")[-300:]), r.get("preferred"), r.get("seconds"), flush=True)
