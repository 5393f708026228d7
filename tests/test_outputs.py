"The saved-outputs rule (tools/clean_outputs.py): what it rewrites, what it flags, and that the committed notebooks pass it."
import json, pathlib, sys
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from clean_outputs import clean_text, problems, clean, MAX_TEXT


def test_redraws_collapse_to_the_final_state():
    bar = "train:   0%|   | 0/3\rtrain:  33%|#  | 1/3\rtrain: 100%|###| 3/3\nloss 0.5\n"
    assert clean_text(bar) == "train: 100%|###| 3/3\nloss 0.5\n"


def test_machine_paths_become_names():
    t = ("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/transformers/x.py:3: FutureWarning\n"
         "/repo/llm_methods/assets/tiny_base | /root/.cache/llm_methods/0.1.0-0123456789/base | /tmp/tmpab12/run\n"
         "/root/.pyenv/versions/3.11.7/bin/python -m deepspeed")
    got = clean_text(t, root="/repo")
    assert got == ("<site-packages>/transformers/x.py:3: FutureWarning\n"
                   "llm_methods/assets/tiny_base | $LLM_METHODS_HOME/base | $TMP/tmpab12/run\npython -m deepspeed"), got


def test_problems_are_flagged():
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"name": "stderr", "output_type": "stream", "text": "a\rb\n"},
        {"name": "stdout", "output_type": "stream", "text": ["saved to /work/main/runs/x\n"]},
        {"output_type": "execute_result", "data": {"text/plain": "x" * (MAX_TEXT + 1)}}]}]}
    got = problems(nb)
    assert len(got) == 4 and "redraw" in got[0] and "machine path" in got[1] and "characters" in got[2], got
    assert "unexplained stderr in cell 0" in got[3], got  # a warning with no word for the reader
    nb["cells"].append({"cell_type": "markdown", "source": ["The warning above is expected: ..."]})
    assert not any("unexplained" in x for x in problems(nb)), problems(nb)
    nb["cells"][-1]["source"] = ["A note that does not say what the warning means."]
    assert any("unexplained" in x for x in problems(nb)), problems(nb)
    assert problems({"cells": [{"cell_type": "code", "outputs": [{"name": "stdout", "text": clean_text("a\rb /tmp/x\n")}]}]}) == []


def test_finished_bars_are_dropped(tmp_path):
    "A library's finished progress bars leave the saved stream; the warning beside them and blank lines elsewhere stay."
    bars = "Loading weights: 100%|##########| 12/12 [00:00<00:00, 1914.04it/s]\nTokenizing train dataset: 100%|####| 5135/5135 [00:01<00:00, 4153.92 examples/s]\n"
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"name": "stderr", "output_type": "stream", "text": bars},
        {"name": "stderr", "output_type": "stream", "text": bars + "UserWarning: something real\n"},
        {"name": "stdout", "output_type": "stream", "text": "a table\n\nits note\n"}]}]}
    nb["cells"].append({"cell_type": "markdown", "source": ["The warning above is a planted one."]})
    assert sum("progress bar" in x for x in problems(nb)) == 2, problems(nb)
    p = tmp_path / "x.ipynb"; p.write_text(json.dumps(nb)); assert clean(p)
    outs = json.loads(p.read_text())["cells"][0]["outputs"]
    assert [o["text"] for o in outs] == ["UserWarning: something real\n", "a table\n\nits note\n"], outs
    assert problems(json.loads(p.read_text())) == []


def test_committed_notebooks_pass():
    bad = {p.name: problems(json.loads(p.read_text()))[:2] for p in sorted((ROOT / "nbs").glob("*.ipynb"))}
    assert not {k: v for k, v in bad.items() if v}, bad

def test_committed_table_reports_budgets_and_preferences():
    "The committed main-job table carries what makes its rows comparable (issue 20's report format)."
    import json
    from pathlib import Path
    rows = {r["method"]: r for r in json.loads((Path(__file__).parents[1] / "results" / "tiny_cpu" / "results.json").read_text())}
    supervised = ["sft", "lora", "qlora", "adalora", "prompt-tuning", "p-tuning", "prefix"]
    assert set(supervised + ["mlm", "nsp", "reward", "ppo", "dpo", "grpo"]) <= set(rows), sorted(rows)
    for m in supervised:  # one budget for every supervised row, and its seed spread
        assert rows[m]["steps"] == rows["sft"]["steps"] and rows[m]["tokens"] == rows["sft"]["tokens"] and rows[m]["lr"], (m, rows[m]["steps"], rows[m]["tokens"])
        assert rows[m]["score_std"] is not None and len(rows[m]["extra"]["seeds"]) >= 3, (m, rows[m]["score_std"])
    assert rows["sft"]["kl_from_sft"] == 0.0
    for m in ("sft", "ppo", "dpo", "grpo"): assert 0 <= rows[m]["gold_preferred"] <= 1, m
    for m in ("ppo", "dpo", "grpo"): assert rows[m]["kl_from_sft"] is not None and rows[m]["kl_from_sft"] >= 0, m
