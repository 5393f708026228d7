"""The package's shape: no import circles, package imports at the top of each module, one stage registry that every
entry point reads (`00d_stages`)."""
import ast, dataclasses, pathlib, re
import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "llm_methods"

def _modules() -> dict:
    out = {}
    for p in PKG.rglob("*.py"):
        if p.name == "_modidx.py": continue
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out

def _imports(mods:dict) -> tuple[dict, list]:
    "Edges module -> package module (every import statement, in functions too) and the package imports made inside functions."
    edges, inner = {m: set() for m in mods}, []
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        def visit(node, in_fn):
            for ch in ast.iter_child_nodes(node):
                f = in_fn or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets = []
                if isinstance(ch, ast.ImportFrom):
                    base = ch.module or ""
                    if ch.level: base = ".".join(pkg.split(".")[: len(pkg.split(".")) - ch.level + 1] + ([ch.module] if ch.module else []))
                    targets = [base] + [f"{base}.{a.name}" for a in ch.names]
                elif isinstance(ch, ast.Import): targets = [a.name for a in ch.names]
                hit = [t for t in targets if t in mods and t != m]
                edges[m].update(hit)
                if in_fn and hit: inner.append(f"{m}:{ch.lineno} imports {hit[0]}")
                visit(ch, f)
        visit(ast.parse(p.read_text()), False)
    return edges, inner

def _cycles(edges:dict) -> list:
    "Strongly connected components with more than one module (Tarjan)."
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def sc(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in edges:
        if v not in index: sc(v)
    return out

def test_no_import_circles():
    edges, _ = _imports(_modules())
    assert _cycles(edges) == []

def test_cycle_finder_finds_a_planted_cycle():
    "The check above can fail: a planted a -> b -> a circle is found."
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]

LATE = {"llm_methods.cli": "`llm_methods --help` answers without importing torch: core/evaluate load once a stage is chosen"}

def test_package_imports_at_module_top():
    "Imports of the package's own modules sit at the top of each module, not inside functions (no circle to dodge); `LATE` says why for the one exception."
    _, inner = _imports(_modules())
    assert [x for x in inner if x.split(":")[0] not in LATE] == []

def test_help_is_fast():
    "`llm_methods --help` lists every stage without importing torch (read from the `@stage` decorators: `stages.stage_index`)."
    import subprocess, sys
    code = "import sys; from llm_methods.cli import build_parser; h = build_parser().format_help(); print('torch' in sys.modules); print(h)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={k: v for k, v in __import__("os").environ.items() if k != "LLM_METHODS_STAGES"})
    first, rest = p.stdout.split("\n", 1)
    assert first == "False", p.stdout + p.stderr
    from llm_methods.stages import registry
    assert all(n in rest for n in registry())

def test_fixtures_not_imported_at_runtime():
    "The test fixtures (`llm_methods.testing`) are imported by no module of the package."
    edges, _ = _imports(_modules())
    assert [m for m, e in edges.items() if "llm_methods.testing" in e] == []

def test_every_entry_point_reads_the_registry():
    "No stage table outside `stages`: the CLI, the pipeline and the launcher have no hand-kept list of stages."
    import llm_methods.cli as cli, llm_methods.pipeline as pipeline, llm_methods.distributed as dist
    from llm_methods.stages import registry, pipeline_stages
    for mod, names in ((cli, ("STAGES",)), (pipeline, ("ORDER",)), (dist, ("LAUNCH_STAGES", "TRAINER_STAGES", "NOT_LAUNCHABLE", "QUICK", "FOUR_BIT", "NO_4BIT"))):
        assert not [n for n in names if hasattr(mod, n)], mod.__name__
    help_text = cli.build_parser().format_help()
    assert all(name in help_text for name in registry())
    assert pipeline.available_stages() == [s.name for s in pipeline_stages()]

def test_run_model_reaches_every_stage(tmp_path):
    "`llm_methods run --model X`: every stage that takes a model gets X, or the model this run trained before it (SFT -> RLHF)."
    from llm_methods.pipeline import PipelineConfig, _stage_configs
    from llm_methods.stages import pipeline_stages
    out = tmp_path / "run"
    cfg = PipelineConfig(model="some/checkpoint", out=str(out))
    took = {}
    for st in pipeline_stages():
        if "model" not in st.fields: continue
        for c in _stage_configs(st.name, cfg): took[st.name] = c
    assert {"sft", "lora", "dora", "pissa", "qlora", "adalora", "prompt-tuning", "ptuning", "prefix", "icl", "reward", "ppo", "dpo",
            "kto", "orpo", "simpo", "grpo"} <= set(took), took
    for name, c in took.items():
        want = str(out / "sft" / "model") if name in ("reward", "ppo", "dpo", "kto", "orpo", "simpo", "grpo") else "some/checkpoint"
        assert c.model == want, (name, c.model)
    assert took["sft"].output_dir == str(out / "sft" / "model")
    assert took["ppo"].reward_model == str(out / "reward" / "model") and took["reward"].output_dir == str(out / "reward" / "model")
    # without the sft stage in the run, the RLHF stages start from the user's model itself
    only = PipelineConfig(model="some/checkpoint", out=str(out), stages="dpo")
    assert _stage_configs("dpo", only)[0].model == "some/checkpoint"

def test_ppo_policy_is_read_as_model():
    "Old recipes with PPO's `policy:` keep working, with a FutureWarning; giving both names is an error."
    from llm_methods.core import from_dict
    from llm_methods.rlhf.ppo import PPOConfig
    with pytest.warns(FutureWarning, match="now called 'model'"):
        assert from_dict(PPOConfig, {"policy": "a/b"}).model == "a/b"
    with pytest.raises(ValueError, match="give 'model' only"):
        from_dict(PPOConfig, {"policy": "a/b", "model": "c/d"})
    with pytest.warns(FutureWarning, match="now called 'model'"):
        assert PPOConfig(policy="a/b").model == "a/b"  # the Python API too
    with pytest.raises(ValueError, match="give 'model' only"):
        PPOConfig(policy="a/b", model="c/d")

@pytest.mark.parametrize("stage,bad,msg", [
    ("sft", {"steps": 0}, "steps must be a positive int"), ("dpo", {"lr": float("inf")}, "lr must be > 0 and finite"),
    ("grpo", {"seed": -1}, "seed must be an int >= 0"), ("ppo", {"device": "gpu"}, "'cuda:N'"),
    ("reward", {"warmup_ratio": 1.5}, "warmup_ratio must be in [0, 1)"), ("icl", {"n_eval": 0}, "n_eval must be a positive int"),
    ("pretrain", {"batch_size": -2}, "batch_size must be a positive int"), ("lora", {"r": 0}, "r must be a positive int"),
    ("kto", {"batch_size": 33}, "batch_size must be an even number"), ("orpo", {"beta": 0}, "beta must be > 0"),
    ("simpo", {"gamma": -0.5}, "gamma must be >= 0")])
def test_one_validation_for_every_stage(stage, bad, msg):
    "Every stage config is checked by `StageConfig`'s one validator (types, ranges, device)."
    from llm_methods.stages import get_stage, StageConfig
    st = get_stage(stage)
    assert issubclass(st.config, StageConfig)
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        st.config(**bad)


def test_dpo_label_smoothing_refused():
    "TRL's sigmoid DPO loss ignores label_smoothing: a setting that would silently do nothing is refused before any compute."
    from llm_methods.rlhf.dpo import DPORunConfig
    with pytest.raises(ValueError, match="would do nothing"):
        DPORunConfig(label_smoothing=0.1)

def test_pipeline_trains_sft_once(tmp_path, monkeypatch):
    "`run_sft` on the tiny base fills the cache the RLHF stages read (`sft_path`), and the run's sft row has their settings."
    import llm_methods.sft as sft
    from llm_methods.pipeline import PipelineConfig, _stage_configs
    for seeds in ("0", "0,1,2"):  # the run's seed-0 SFT model is the one the RLHF stages ask for
        first = _stage_configs("sft", PipelineConfig(out=str(tmp_path / "run"), seeds=seeds))[0]
        assert first.seed == 0 and sft.sft_key(first) == sft.sft_key(sft.SFTRunConfig()), first
    monkeypatch.setenv("LLM_METHODS_HOME", str(tmp_path / "home"))
    cfg = sft.SFTRunConfig(steps=2, batch_size=4, n_train=8, eval_n_per_task=1, progress=False, record=False)
    res = sft.run_sft(cfg)
    def no_training(*a, **k): raise AssertionError("sft_path trained again: run_sft did not fill the cache")
    monkeypatch.setattr(sft, "sft_train", no_training)
    rec = sft.sft_info(cfg)
    assert rec["heldout"]["score"] == res.score and rec["heldout"]["n"] == res.n_scored > 0, rec["heldout"]

def test_ppo_ptx_takes_the_runs_demonstrations(tmp_path):
    "PPO-ptx trains on the run's SFT data (`ptx_data`, handed on by `llm_methods run`), never silently on the tiny world's."
    import json
    from llm_methods.pipeline import PipelineConfig, _stage_configs
    from llm_methods.rlhf.ppo import PPOConfig, PPOTrainer
    from llm_methods.base import tiny_base
    from llm_methods.rlhf.common import chat_prompts
    sft_rows, prompts = tmp_path / "sft.jsonl", tmp_path / "prompts.jsonl"
    sft_rows.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"say {w}"}, {"role": "assistant", "content": w}]}) + "\n"
                                for w in ("kiwi", "plum")))
    prompts.write_text(json.dumps({"prompt": "say fig"}) + "\n")
    run = PipelineConfig(out=str(tmp_path / "run"), stages="sft,ppo", overrides={"sft": {"data": str(sft_rows)}, "ppo": {"data": str(prompts)}})
    assert _stage_configs("ppo", run)[0].ptx_data == str(sft_rows)
    with pytest.raises(ValueError, match="ptx_data"):  # own prompts, no demonstrations: said before any compute
        _stage_configs("ppo", PipelineConfig(out=str(tmp_path / "run"), stages="ppo", overrides={"ppo": {"data": str(prompts)}}))
    assert PPOConfig(data=str(prompts), ptx_coef=0.0).ptx_coef == 0  # plain PPO needs none
    policy, tok = tiny_base()
    t = PPOTrainer(policy, tok, cfg=_stage_configs("ppo", run)[0], questions=["say fig"], reward_fn=lambda q, r: [0.0] * len(r))
    assert t.ptx_rows == [(chat_prompts(tok, [f"say {w}"])[0], w) for w in ("kiwi", "plum")], t.ptx_rows[:3]


_FORMULA_NAME = re.compile(r"flop|mfu|param_count", re.I)

def _own_compute_math(src:str, compute) -> list[str]:
    "Where a module's source defines again what `pretrain.compute` owns: a function named like one of its functions or like a FLOP / parameter-count / MFU formula, a module constant equal to one of its tables, or a GPU peak written as a number."
    tree, out = ast.parse(src), []
    fns = {n for n in compute.__all__ if callable(getattr(compute, n))}
    tables = [getattr(compute, n) for n in compute.__all__ if not callable(getattr(compute, n))]
    peaks = {v * scale for v in compute.GPU_PEAK_TFLOPS.values() for scale in (1, 1e12)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (node.name in fns or _FORMULA_NAME.search(node.name)):
            out.append(f"line {node.lineno}: def {node.name}")
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value in peaks:
            out.append(f"line {node.lineno}: the GPU peak {node.value:g}")
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None: continue
        try: v = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError): continue
        if any(type(v) is type(t) and v == t for t in tables): out.append(f"line {node.lineno}: {ast.unparse(node)[:70]}")
    return out

def _spelled_1b(src:str, compute) -> list[str]:
    "Dict displays and calls (`dict(...)`, `LlamaConfig(...)`) that spell out three or more fields of the 1.1B shape, `compute.TINYLLAMA_1B`."
    shape, out = set(compute.TINYLLAMA_1B.items()), []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Dict): pairs = [(k.value, v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Call): pairs = [(k.arg, k.value) for k in node.keywords if k.arg]
        else: continue
        items = {(k, v.value) for k, v in pairs if isinstance(v, ast.Constant) and isinstance(k, str)}
        if len(items & shape) >= 3: out.append(f"line {node.lineno}: {sorted(items & shape)}")
    return out

def test_bench_takes_its_compute_math_from_compute(monkeypatch):
    "`pretrain.compute` is the one home of parameter counts, FLOPs, MFU and the 1.1B shape (issue 19): `bench` defines none of its own, no other module spells the shape out, and bench's numbers for the 1.1B shape (a run's row, the committed result tables) are compute's."
    import json
    import llm_methods.pretrain.compute as compute
    import llm_methods.bench as bench
    assert _own_compute_math((PKG / "bench.py").read_text(), compute) == []
    spelled = {m: s for m, p in _modules().items() if m != "llm_methods.pretrain.compute" and (s := _spelled_1b(p.read_text(), compute))}
    assert spelled == {}
    assert bench.SHAPES["1b"] == compute.TINYLLAMA_1B
    N, peak = 1_100_048_384, compute.GPU_PEAK_TFLOPS[bench.MFU_GPU]   # benchmarks/RESULTS.md: N of every parameter, over 989 TFLOP/s
    assert peak == 989.0 and compute.param_counts(bench.llama_config("1b")) == compute.param_counts(compute.tinyllama_config())
    assert compute.param_counts(compute.tinyllama_config())["total"] == N
    # a 1.1B run's row, the model built on the meta device and its step clocked at 0.5 s: FLOPs and MFU as compute counts them,
    # equal to what bench's own formulas gave before they moved (6N; PaLM's; LoRA r=16: 4N + 6 N_lora)
    monkeypatch.setattr(bench, "_run_ours", lambda model, cfg, dev, batch, vocab: dict(batch=batch, step_s=0.5))
    want = {"pretrain": (0, 6 * N, 7_314_370_560), "lora": (12_615_680, 4_475_887_616, 5_321_039_872)}
    for which, (lora, f6, fp) in want.items():
        r = bench.run_bench(bench.BenchConfig(which=which, variant="ours-eager", shape="1b", batch=16, device="meta"))
        assert (r["trainable_params"] if lora else 0, r["flops_per_token_6N"]) == (lora, f6)
        tinyllama = compute.tinyllama_config()
        assert compute.config_flops_per_token(tinyllama, 2048, lora_params=lora, kind="6N") == f6
        assert compute.config_flops_per_token(tinyllama, 2048, lora_params=lora) == fp
        assert (r["mfu"], r["mfu_palm"]) == (compute.mfu(r["tokens_per_s"], f6, peak_tflops=peak), compute.mfu(r["tokens_per_s"], fp, peak_tflops=peak))
    # the committed result tables: every pretrain/LoRA row's FLOPs and both MFU columns are compute's numbers
    rows = [json.loads(l) for f in sorted((PKG.parent / "benchmarks" / "raw").rglob("*.jsonl")) for l in f.read_text().splitlines() if l.strip()]
    rows = [r for r in rows if r.get("which") in ("pretrain", "lora") and "mfu" in r]
    assert len(rows) >= 13
    for r in rows:
        c, lora = bench.llama_config(r["shape"], max_len=r["seq"]), r["trainable_params"] if r["which"] == "lora" else 0
        f6 = compute.config_flops_per_token(c, r["seq"], lora_params=lora, kind="6N")
        fp = compute.config_flops_per_token(c, r["seq"], lora_params=lora)
        assert (f6, r["mfu"], r["mfu_palm"]) == (r["flops_per_token_6N"], compute.mfu(r["tokens_per_s"], f6, peak_tflops=peak),
                                                 compute.mfu(r["tokens_per_s"], fp, peak_tflops=peak)), r

def test_compute_copy_finder_finds_planted_copies():
    "The checks above can fail: a planted FLOP / parameter-count / MFU function, a second MFU peak, a copied table and a spelled-out 1.1B shape are found."
    import llm_methods.pretrain.compute as compute
    planted = '''
PEAK_BF16_FLOPS = 989e12
LORA_ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SHAPES = {"1b": dict(hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, intermediate_size=5632)}
def flops_per_token(cfg, seq): return 6 * seq
def param_counts(cfg): return {}
def bench_mfu(tokens_per_s, flops): return tokens_per_s * flops / 989e12
'''
    assert len(_own_compute_math(planted, compute)) == 6   # the three functions, PEAK_BF16_FLOPS, bench_mfu's 989e12, the table
    assert len(_spelled_1b(planted, compute)) == 1
    assert _own_compute_math("def _peak(dev): return 0\nBATCHES = (1, 2, 4)\n", compute) == []   # names and tables of its own are fine


def _fn_imports_without_reason(src:str) -> list[int]:
    "Line numbers of import statements inside a function (or method) of `src` with no `# optional: <reason>` on their lines."
    lines, out = src.splitlines(), []
    for fn in ast.walk(ast.parse(src)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)): continue
        for n in ast.walk(fn):
            if isinstance(n, (ast.Import, ast.ImportFrom)) and not any(
                    re.search(r"# optional: \S.{8,}", l) for l in lines[n.lineno - 1 : n.end_lineno]):
                out.append(n.lineno)
    return sorted(set(out))

def test_imports_inside_functions_only_optional():
    "Imports sit at the top of each module; one inside a function is only for an optional dependency (deepspeed, bitsandbytes, pynvml) or the CLI's torch-free `--help`, and says why: `# optional: <reason>` on its line."
    bad = {m: ln for m, p in _modules().items() if (ln := _fn_imports_without_reason(p.read_text()))}
    assert bad == {}, bad
    assert _fn_imports_without_reason("def f():\n    import json\n") == [2]  # a planted one is found
    assert _fn_imports_without_reason("def f():\n    import pynvml  # optional: NVIDIA only, not a requirement\n") == []

def test_notebook_name_is_module_path():
    "A notebook that exports a module is named after its path (`06b_rlhf_ppo.ipynb` -> `llm_methods/rlhf/ppo.py`), and the README's map lists every notebook."
    nbs = PKG.parent / "nbs"
    wrong = {}
    for nb in sorted(nbs.glob("*.ipynb")):
        m = re.search(r"#\| default_exp ([\w.]+)", nb.read_text())
        if m is None: continue
        want = m.group(1).replace(".", "_")
        stem = nb.stem.split("_", 1)[1] if "_" in nb.stem else ""
        if stem != want: wrong[nb.name] = f"exports llm_methods.{m.group(1)}: name it <number>_{want}.ipynb"
    assert not wrong, wrong
    readme = (PKG.parent / "README.md").read_text()
    missing = [nb.stem for nb in sorted(nbs.glob("[0-9]*.ipynb")) if f"`{nb.stem}`" not in readme]
    assert not missing, f"README's notebook map omits {missing}"


def test_module_docstrings_are_whole_sentences():
    "nbdev writes a module's docstring from its notebook's first `>` line only: a description wrapped over several lines ends mid-sentence."
    import ast
    cut = {}
    for f in sorted(PKG.rglob("*.py")):
        d = ast.get_docstring(ast.parse(f.read_text()))
        if d and not d.rstrip().endswith((".", ")", ":", "?", "!")): cut[str(f.relative_to(PKG))] = d[-60:]
    assert not cut, cut


def test_exported_plot_needs_no_notebook_names():
    "plot_zero_memory ran only in 07's notebook, where a cell defines GB; from the package it raised NameError."
    import matplotlib; matplotlib.use("Agg")
    from llm_methods.distributed import plot_zero_memory
    plot_zero_memory(1.1e9, gpus=(2,))
