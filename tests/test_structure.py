"""The package's shape: no import circles, package imports at the top of each module, one stage registry that every
entry point reads (`00d_stages`)."""
import ast, dataclasses, pathlib
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
    assert {"sft", "lora", "qlora", "adalora", "prompt-tuning", "ptuning", "prefix", "icl", "reward", "ppo", "dpo", "grpo"} <= set(took), took
    for name, c in took.items():
        want = str(out / "sft" / "model") if name in ("reward", "ppo", "dpo", "grpo") else "some/checkpoint"
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
    ("pretrain", {"batch_size": -2}, "batch_size must be a positive int"), ("lora", {"r": 0}, "r must be a positive int")])
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

# Modules whose function-level imports are moved on another branch (issue 19): handled on another branch, so skipped
# here until it merges; then remove each name from this set.
FN_IMPORTS_ELSEWHERE = {"llm_methods.bench", "llm_methods.pretrain.compute", "llm_methods.sft", "llm_methods.rlhf.common"}

def _fn_imports_without_reason(src:str) -> list[int]:
    "Line numbers of import statements inside a function (or method) of `src` with no `# optional: <reason>` on their lines."
    import re
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
    bad = {m: ln for m, p in _modules().items() if m not in FN_IMPORTS_ELSEWHERE and (ln := _fn_imports_without_reason(p.read_text()))}
    assert bad == {}, bad
    assert _fn_imports_without_reason("def f():\n    import json\n") == [2]  # a planted one is found
    assert _fn_imports_without_reason("def f():\n    import pynvml  # optional: NVIDIA only, not a requirement\n") == []
