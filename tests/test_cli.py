"End-to-end checks of the `llm_methods` console script (what a notebook cannot test: a real subprocess)."
import subprocess, sys, json, shutil, pytest

def run(*args, **kw):
    exe = shutil.which("llm_methods")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "llm_methods.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)

def test_help_lists_stages():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    for stage in ("run", "base", "sft"):
        assert f"\n    {stage} " in r.stdout, r.stdout

def test_show_config_resolves_overrides():
    r = run("sft", "--set", "steps=7", "lr=0.01", "--show-config")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["steps"] == 7 and cfg["lr"] == 0.01

@pytest.mark.parametrize("args, msg", [
    (["sft", "--set", "stepz=3"], "did you mean 'steps'"),
    (["sft", "--set", "steps=0"], "steps must be a positive int"),
    (["sft", "--set", "lr=-1"], "lr must be > 0"),
    (["sft", "--config", "/no/such/recipe.yaml"], "does not exist"),
    (["run", "--set", "stages=base,nope", "out=/tmp/llm_methods_cli_test"], "unknown stage"),
])
def test_bad_config_fails_clearly(args, msg):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert msg in r.stderr, r.stderr

def test_compute_prints_the_article_budget():
    "The article's GPT-3 numbers from the command line: 175B params x 300B tokens is about 3640 PF-days."
    r = run("compute", "--set", "params=175e9", "tokens=300e9")
    assert r.returncode == 0, r.stderr
    assert "PF" in r.stdout and ("3,6" in r.stdout or "36" in r.stdout), r.stdout


def test_run_goes_on_past_a_failing_stage(tmp_path):
    "A stage that fails at run time is recorded; the run writes the table from the rest, names the failure and how to retry, exits 1."
    out = tmp_path / "run"
    over = json.dumps({"icl": {"model": str(tmp_path / "no-such-model")}})
    r = run("run", "--stages", "base,icl", "--icl-shots", "0", "--out", str(out), "--set", f"overrides={over}",
            env={**__import__("os").environ, "LLM_METHODS_HOME": str(tmp_path / "home")})
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "icl" in r.stdout and "FAILED" in r.stdout and "run them again" in r.stdout, r.stdout
    assert "llm_methods run --out" in r.stdout, r.stdout
    assert (out / "icl" / "error.txt").exists() and "base (plain style)" in (out / "results.md").read_text()
    assert len(r.stdout.splitlines()) < 12, r.stdout  # one line per stage and a short summary: the rest is in the logs
