"""`llm_methods serve` end to end (what a notebook cannot test: the console script as its own process, a real browser):
a run folder with every stage, the command on a free local port, its HTTP API, then the page in headless Chromium.
Chromium is required, not optional: without it these tests fail and say how to install it (`.ci/run` installs it)."""
import json, shutil, socket, subprocess, sys, time, urllib.error, urllib.request
import pytest
from llm_methods.testing import tiny_run
from llm_methods.serve import ServeApp, ServeConfig, run_rows, browse, shown_answers
from llm_methods.rlhf.common import rlhf_heldout

ITEM = next(i for i, it in enumerate(rlhf_heldout()) if it["task"] == "add")  # a held-out addition


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    rq = urllib.request.Request(url + "api/answer", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(rq, timeout=300) as r: return json.loads(r.read())


@pytest.fixture(scope="module")
def served():
    "`llm_methods serve --run RUN --port FREE` in its own process, until the module's tests are done."
    run = tiny_run()  # cached: the notebook 12_serve builds the same one
    port = _free_port()
    exe = shutil.which("llm_methods")
    cmd = ([exe] if exe else [sys.executable, "-m", "llm_methods.cli"]) + ["serve", "--run", str(run), "--port", str(port)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, t0 = f"http://127.0.0.1:{port}/", time.time()
    while True:
        if p.poll() is not None: pytest.fail(f"llm_methods serve exited with {p.returncode}:\n{p.stdout.read()}")
        try:
            urllib.request.urlopen(url + "api/run", timeout=5).read(); break
        except (urllib.error.URLError, ConnectionError):
            if time.time() - t0 > 180: p.kill(); pytest.fail("llm_methods serve did not answer within 180 s")
            time.sleep(0.5)
    yield run, url
    p.terminate(); out = p.communicate(timeout=30)[0]
    assert "Traceback" not in out, out


def test_every_model_answers_over_http(served):
    "Every row of the run is on the answer, every generating row with an answer and its scores, the others with why not."
    run, url = served
    d = _post(url, {"item": ITEM})
    table = [r["method"] for r in json.loads((run / "results.json").read_text())]
    assert [a["method"] for a in d["rows"]] == table  # every row of the table, in its order
    gen = {r.method for r in run_rows(run) if r.generates}
    assert len(gen) >= 13, gen  # base, sft, the LoRA family, the prompt methods, icl x2, ppo, dpo, grpo
    for a in d["rows"]:
        assert "error" not in a, a
        if a["method"] in gen:
            assert isinstance(a["answer"], str) and isinstance(a["correct"], bool) and isinstance(a["preferred"], bool), a
            assert a["logprob"] < 0 and isinstance(a["reward"], float), a
        else: assert a["answer"] is None and a["note"], a  # mlm, nsp (BERT), reward (the scorer)
    assert d["question"] == rlhf_heldout()[ITEM]["question"] and d["reference"] == rlhf_heldout()[ITEM]["answer"]


def test_page_shows_every_answer(served):
    "Headless Chromium loads the page with a held-out question in its link: it answers on load and shows every row's answer."
    run, url = served
    want = {a["method"]: a["answer"] for a in _post(url, {"item": ITEM})["rows"]}
    dom = browse(url + f"?item={ITEM}")  # FileNotFoundError with the install command when Chromium is missing
    assert 'data-state="answered"' in dom, dom[-2000:]
    assert shown_answers(dom) == want
    assert "The run's table" in dom and 'src="results.png"' in dom


def test_a_model_past_the_memory_limit_is_refused():
    "A limit below the models' size: the page still answers, each row saying which flag to raise (nothing is loaded)."
    app = ServeApp(ServeConfig(run=str(tiny_run()), max_memory_gb=1e-6))
    assert app.memory()[1] and "--max-memory-gb" in app.memory()[1]
    d = app.answer({"item": ITEM})
    errs = [a["error"] for a in d["rows"] if a["method"] in {r.method for r in app.rows if r.generates}]
    assert errs and all("raise it with `llm_methods serve --max-memory-gb" in e for e in errs), errs
    assert app.cache.models == {}
