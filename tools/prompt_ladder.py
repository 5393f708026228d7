"""The prompt methods' gap to full fine-tuning across base sizes (Lester et al. 2021, Figure 1, in miniature; `--methods`
adds prefix tuning and P-tuning to prompt tuning).

    python tools/prompt_ladder.py --sizes s96,s192,s384,s768 --seeds 0,1 --jobs 8 --out results/sweeps/prompt_ladder.jsonl
    python tools/prompt_ladder.py --out results/sweeps/prompt_ladder.jsonl --table
    python tools/prompt_ladder.py --sizes s48,s96,s192w --seeds 0 --jobs 2 --sft-lrs 1e-3,3e-3 --pt-lrs 0.1,0.3 --out F   # the CPU ladder
    python tools/prompt_ladder.py --smoke --sizes s96 --out /tmp/ladder_smoke.jsonl   # CPU check: tiny step counts, few items

Per size: pretrain a base on the tiny world (same world, tokenizer, corpus and 3,000 steps; `base.tiny_base(shipped=False)`) at
each pretraining lr of BASE_LRS[size], score it plain-style on the held-out fact/add/rev items, keep the best; then SFT and
prompt tuning of that base at the same 500-step budget, seed 0, over GRID's lrs; then the other seeds at each method's best lr.
Each base and each run is its own process (`--jobs` at once); one JSON line per base ("kind": "base") and per run ("kind": "run")
is appended to --out. Runs already in --out (same size, method, lr, seed) are skipped, so an interrupted ladder resumes;
`--budget-s` stops starting new processes after that many seconds. Bases are cached under $LLM_METHODS_HOME/base/<key>.
"""
import argparse, json, math, os, subprocess, sys, time, datetime
from concurrent.futures import ThreadPoolExecutor

SIZES = {  # name: shape; init_std scales as 0.08 * sqrt(96 / hidden) (0.08 was tuned for the 96-wide base)
    "s48": dict(hidden=48, layers=2, heads=2, ffn=128),  # half as wide (CPU ladder: width only, head size 24 throughout)
    "s96": dict(hidden=96, layers=2, heads=4, ffn=256),  # the shipped base's shape
    "s192w": dict(hidden=192, layers=2, heads=8, ffn=512),  # twice as wide, same depth (CPU ladder)
    "s384w": dict(hidden=384, layers=2, heads=16, ffn=1024),  # 4x as wide, same depth (GPU rung of the width ladder)
    "s768w": dict(hidden=768, layers=2, heads=32, ffn=2048),  # 8x as wide, same depth (GPU rung)
    "s192": dict(hidden=192, layers=4, heads=4, ffn=512),
    "s384": dict(hidden=384, layers=4, heads=8, ffn=1024),
    "s768": dict(hidden=768, layers=6, heads=12, ffn=2048),
}
BASE_LRS = {"s48": [6e-3], "s96": [6e-3], "s192w": [3e-3, 6e-3], "s384w": [1.5e-3, 3e-3], "s768w": [7.5e-4, 1.5e-3], "s192": [3e-3, 6e-3], "s384": [1.5e-3, 3e-3], "s768": [7.5e-4, 1.5e-3]}  # pretraining peak lr
GRID = {"sft": [3e-4, 1e-3, 3e-3], "prompt-tuning": [3e-2, 1e-1, 3e-1, 1.0],  # fine-tuning lrs tried per size (seed 0)
        "prefix": [3e-2, 1e-1, 3e-1], "ptuning": [3e-3, 1e-2, 3e-2]}

PRIOR = {"sft": 1, "prompt-tuning": 2, "prefix": 1, "ptuning": 2}  # GRID index of each method's best lr on the shipped base (results/sweeps): tried first

PROMPT_METHODS = ("prompt-tuning", "ptuning", "prefix")

def init_std(hidden): return 0.08 if hidden == 96 else round(0.08 * math.sqrt(96 / hidden), 4)

BASE_CODE = """
import json, sys, time
t0 = time.perf_counter()
import torch
from llm_methods.base import BaseConfig, tiny_base, tiny_world, base_info
from llm_methods.core import count_params, home_dir, get_device
from llm_methods.evaluate import evaluate
s = json.loads(sys.argv[1])
train = dict(lr=s["base_lr"], progress=False, **({"steps": s["base_steps"]} if s.get("base_steps") else {}))
cfg = BaseConfig(hidden=s["hidden"], layers=s["layers"], heads=s["heads"], ffn=s["ffn"], init_std=s["init_std"], train=train)
dev = get_device(None).type
model, tok = tiny_base(cfg, shipped=False, device=dev)
built = time.perf_counter() - t0
info = base_info(cfg)
items = tiny_world().heldout(tasks=["fact", "add", "rev"], n_per_task=s.get("n_per_task"))
rep = evaluate(model, tok, items, style="plain")
rep_all = evaluate(model, tok, tiny_world().heldout(n_per_task=s.get("n_per_task")), style="plain")
h = info.get("history") or []
print("RESULT " + json.dumps(dict(kind="base", **s, key=cfg.key(), path=str(home_dir() / "base" / cfg.key()),
      params=count_params(model)[1], base_plain_em=rep.score, base_plain_per_task=rep.per_task, base_plain_em_all=rep_all.score,
      pretrain_final_loss=h[-1]["loss"] if h else None, pretrain_s=round(info.get("train_s", 0), 1), device=dev,
      seconds=round(time.perf_counter() - t0, 1))))
"""

RUN_CODE = """
import json, sys, time, importlib
from llm_methods.stages import get_stage
from llm_methods.core import from_dict
stage, kw, meta = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
st = get_stage(stage)
cfg = from_dict(st.config, kw)
t0 = time.perf_counter(); r = st.run(cfg)
print("RESULT " + json.dumps(dict(kind="run", **meta, method=stage, lr=kw["lr"], seed=kw["seed"], steps=kw["steps"], score=r.score,
      per_task=r.per_task, preferred=r.gold_preferred, trainable_params=r.trainable_params, answer_loss=r.answer_loss,
      final_loss=r.final_loss, device=r.device, seconds=round(time.perf_counter() - t0, 1))))
"""

def _call(code, *args):
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    line = next((l for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
    return json.loads(line[7:]) if line else {"error": (p.stderr or p.stdout)[-1500:]}

def env_line() -> dict:
    import platform, importlib.metadata as md
    d = {"kind": "env", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version()}
    for n in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try: d[n] = md.version(n)
        except md.PackageNotFoundError: d[n] = None
    try:
        import torch
        d["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        d["cuda"] = torch.version.cuda
    except Exception as e: d["gpu"] = f"? {e}"
    return d

def read(path) -> list[dict]:
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []

def best_base(rows, size):
    "The base of `size` with the best plain-style held-out EM (ties: lower final pretraining loss); the newest line per lr."
    bs = {b["base_lr"]: b for b in rows if b.get("kind") == "base" and b.get("size") == size and "base_plain_em" in b}
    return max(bs.values(), key=lambda b: (b["base_plain_em"], -(b["pretrain_final_loss"] or 0)), default=None)

def best_lr(rows, size, method, seed):
    rs = [r for r in rows if r.get("kind") == "run" and r.get("size") == size and r.get("method") == method and r.get("seed") == seed and "score" in r]
    return max(rs, key=lambda r: (r["score"], -(r["answer_loss"] or 0)))["lr"] if rs else None

def main(a):
    t_start = time.time()
    sizes = a.sizes.split(","); seeds = [int(s) for s in a.seeds.split(",")]
    smoke = dict(base_steps=30, n_per_task=4) if a.smoke else ({"base_steps": a.base_steps} if a.base_steps else {})
    run_kw = dict(steps=5 if a.smoke else a.steps, record=False, progress=False, **({"eval_n_per_task": 4} if a.smoke else {}))
    out = open(a.out, "a")
    def emit(r):
        out.write(json.dumps(r) + "\n"); out.flush()
        brief = {k: r.get(k) for k in ("kind", "size", "base_lr", "method", "lr", "seed", "score", "base_plain_em", "seconds") if k in r}
        print(json.dumps(brief) if "error" not in r else f"FAILED {brief}: {r['error'][-1200:]}", flush=True)
    def timed_out(): return a.budget_s and time.time() - t_start > a.budget_s
    emit(env_line())
    def pool(jobs, fn):  # longest first (bigger sizes); jobs that would start past the budget are skipped
        def go(j):
            if timed_out(): return None
            return fn(j)
        with ThreadPoolExecutor(a.jobs) as ex:
            for r in ex.map(go, jobs):
                if r is not None: emit(r)

    # 1. bases (cached after the first build; a cached base is only re-scored, and its line says so)
    base_jobs = [dict(size=s, **SIZES[s], init_std=init_std(SIZES[s]["hidden"]), base_lr=lr, **smoke) for s in reversed(sizes) for lr in BASE_LRS[s]]
    pool(base_jobs, lambda j: {**_call(BASE_CODE, json.dumps(j)), "size": j["size"], "base_lr": j["base_lr"]})
    rows = read(a.out)
    bases = {s: best_base(rows, s) for s in sizes}
    for s, b in bases.items():
        desc = "none" if b is None else f"lr {b['base_lr']:g}, plain EM {b['base_plain_em']:.3f}, {b['params']:,} params"
        print(f"base {s}: {desc}", flush=True)

    def run(job):
        stage, size, lr, seed = job
        b = bases[size]
        meta = dict(size=size, hidden=b["hidden"], layers=b["layers"], params=b["params"], base_lr=b["base_lr"], base_key=b["key"],
                    base_plain_em=b["base_plain_em"])
        r = _call(RUN_CODE, stage, json.dumps(dict(model=b["path"], lr=lr, seed=seed, **run_kw)), json.dumps(meta))
        return {**meta, "kind": "run", "method": stage, "lr": lr, "seed": seed, **r}
    def todo(jobs):
        done = {(r["size"], r["method"], r["lr"], r["seed"]) for r in read(a.out) if r.get("kind") == "run" and "score" in r}
        return [j for j in jobs if (j[1], j[0], j[2], j[3]) not in done and bases.get(j[1])]
    methods = a.methods.split(",")
    # 2. the lr grid, first seed
    grid = [(m, s, lr, seeds[0]) for s in reversed(sizes) for m in methods for lr in GRID[m]]
    grid.sort(key=lambda j: abs(GRID[j[0]].index(j[2]) - PRIOR[j[0]]))  # the likely-best lrs first (a cut budget keeps them)
    pool(todo(grid), run)
    # 3. the other seeds at each method's best lr (chosen on the first seed)
    rows = read(a.out)
    more = [(m, s, best_lr(rows, s, m, seeds[0]), sd) for s in reversed(sizes) for m in methods for sd in seeds[1:]]
    pool(todo([j for j in more if j[2] is not None]), run)
    print(f"done in {time.time() - t_start:.0f} s", flush=True)

def table(path) -> str:
    "Markdown: one row per size (best lr per method on seed 0, mean over the seeds at that lr), then the whole grid."
    rows = read(path)
    sizes = [s for s in SIZES if any(r.get("size") == s and r.get("kind") == "run" for r in rows)]
    env = [r for r in rows if r.get("kind") == "env"]
    out = ["| size | hidden×layers | params | base lr | base plain EM | SFT lr | SFT EM | PT lr | PT EM | PT/SFT | gap (pts) | seeds |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    grid = ["| size | method | lr | seed | held-out EM | fact | add | rev | s |", "|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        rs = [r for r in rows if r.get("kind") == "run" and r.get("size") == s and "score" in r]
        seed0 = min(r["seed"] for r in rs)
        cell = {}
        for m in ("sft", "prompt-tuning"):
            lr = best_lr(rows, s, m, seed0)
            sc = [r["score"] for r in rs if r["method"] == m and r["lr"] == lr]
            cell[m] = (lr, sum(sc) / len(sc) if sc else float("nan"), sc)
        b = rs[0]
        (slr, sem, ssc), (plr, pem, psc) = cell["sft"], cell["prompt-tuning"]
        fmt = lambda v: "/".join(f"{x:.1%}" for x in v)
        out.append(f"| {s} | {b['hidden']}×{b['layers']} | {b['params'] / 1e6:.2f}M | {b['base_lr']:g} | {b['base_plain_em']:.1%} | {slr:g} | "
                   f"**{sem:.1%}** ({fmt(ssc)}) | {plr:g} | **{pem:.1%}** ({fmt(psc)}) | {(pem / sem if sem else 0):.2f} | {100 * (sem - pem):.1f} | {len(ssc)}/{len(psc)} |")
        for r in sorted(rs, key=lambda r: (r["method"], r["lr"], r["seed"])):
            pt = " | ".join(f"{r['per_task'].get(t, 0):.0%}" for t in ("fact", "add", "rev"))
            grid.append(f"| {s} | {r['method']} | {r['lr']:g} | {r['seed']} | {r['score']:.1%} | {pt} | {r['seconds']:.0f} |")
    bases = ["| size | base lr | init_std | params | plain EM (fact/add/rev) | plain EM (+icl) | final pretrain loss | pretrain s |", "|---|---|---|---|---|---|---|---|"]
    for b in rows:
        if b.get("kind") == "base" and "base_plain_em" in b:
            pt = "/".join(f"{b['base_plain_per_task'].get(t, 0):.0%}" for t in ("fact", "add", "rev"))
            bases.append(f"| {b['size']} | {b['base_lr']:g} | {b['init_std']} | {b['params']:,} | {b['base_plain_em']:.1%} "
                         f"({pt}) | {b['base_plain_em_all']:.1%} | "
                         f"{b['pretrain_final_loss'] or float('nan'):.3f} | {b['pretrain_s']:.0f} |")
    ratio = ["| size | params | SFT EM | " + " | ".join(f"{m} EM | {m}/SFT" for m in PROMPT_METHODS) + " |",
             "|---|---|---|" + "---|---|" * len(PROMPT_METHODS)]
    for s in sizes:
        rs = [r for r in rows if r.get("kind") == "run" and r.get("size") == s and "score" in r]
        seed0 = min(r["seed"] for r in rs)
        def mean_best(m):
            lr = best_lr(rows, s, m, seed0); sc = [r["score"] for r in rs if r["method"] == m and r["lr"] == lr]
            return (sum(sc) / len(sc), lr, len(sc)) if sc else None
        sft = mean_best("sft"); cells = []
        for m in PROMPT_METHODS:
            v = mean_best(m)
            cells.append("– | –" if v is None or not sft else f"{v[0]:.1%} (lr {v[1]:g}, {v[2]} seed{'s' * (v[2] > 1)}) | {v[0] / sft[0]:.2f}")
        ratio.append(f"| {s} | {rs[0]['params'] / 1e6:.2f}M | {sft[0]:.1%} | " + " | ".join(cells) + " |" if sft else f"| {s} | no SFT run |")
    envs = "\n".join(f"- env: {json.dumps(e)}" for e in env[-1:])
    return "\n".join(out) + "\n\nEvery prompt method against SFT (best lr on the first seed, mean over the seeds run there):\n\n" + "\n".join(ratio) + "\n\nBases:\n\n" + "\n".join(bases) + "\n\nEvery run:\n\n" + "\n".join(grid) + "\n\n" + envs

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=",".join(SIZES)); ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="sft,prompt-tuning"); ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--out", required=True); ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=0, help="start no new process after this many seconds (0: no limit)")
    ap.add_argument("--smoke", action="store_true", help="a quick CPU check: 30 pretraining steps, 5 fine-tuning steps, 4 items per task")
    ap.add_argument("--table", action="store_true", help="print --out as markdown tables and exit")
    ap.add_argument("--sft-lrs", default=None, help="comma-separated SFT lrs instead of GRID's"); ap.add_argument("--pt-lrs", default=None)
    ap.add_argument("--first-base-lr", action="store_true", help="pretrain each size at BASE_LRS' first (lowest) lr only")
    ap.add_argument("--base-steps", type=int, default=None, help="pretraining steps of every base (default: the shipped base's 3,000)")
    a = ap.parse_args()
    if a.sft_lrs: GRID["sft"] = [float(x) for x in a.sft_lrs.split(",")]
    if a.pt_lrs: GRID["prompt-tuning"] = [float(x) for x in a.pt_lrs.split(",")]
    PRIOR.update({m: min(PRIOR[m], len(GRID[m]) - 1) for m in PRIOR})
    if a.first_base_lr: BASE_LRS.update({k: v[:1] for k, v in BASE_LRS.items()})
    if a.table: print(table(a.out)); raise SystemExit
    main(a)
