"""A practitioner's run through the console script, on a real-architecture checkpoint (Qwen2 built from a config) with
their own data file: the trained model is saved and reloads with transformers / PEFT, a run folder belongs to one run,
two live runs can't share one, a dead run's lock is cleared, and bad inputs are one line."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def cli(*args, home, **kw):
    exe = shutil.which("llm_methods")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "llm_methods.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**ENV, "LLM_METHODS_HOME": str(home)}, **kw)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    "A Qwen2-architecture checkpoint (random init, the tiny tokenizer) and a user's chat data file."
    d = tmp_path_factory.mktemp("practitioner")
    os.environ["LLM_METHODS_HOME"] = str(d / "home")
    from llm_methods.base import random_checkpoint, tiny_world
    ckpt = random_checkpoint(d / "qwen2-tiny", size="qwen2-tiny", max_len=256)
    rows = [{"messages": r["messages"]} for r in tiny_world().instructions("train")[:64]]
    data = d / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d, ckpt, data


def test_sft_saves_a_model_that_reloads(setup):
    d, ckpt, data = setup
    out = d / "sft-out"
    r = cli("sft", "--set", f"model={ckpt}", f"data={data}", f"output_dir={out}", "steps=3", "batch_size=4", "lr=1e-3", home=d / "home")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no held-out set" in r.stdout and "held-out 0.0%" not in r.stdout, r.stdout
    assert f"saved to {out}" in r.stdout and "AutoModelForCausalLM.from_pretrained" in r.stdout, r.stdout
    from transformers import AutoModelForCausalLM
    trained, base = AutoModelForCausalLM.from_pretrained(out), AutoModelForCausalLM.from_pretrained(ckpt)
    w = lambda m: m.model.layers[0].mlp.up_proj.weight
    assert w(trained).shape == w(base).shape and not torch.equal(w(trained), w(base))  # trained, then saved
    man = json.loads((out / "llm_methods_run.json").read_text())
    assert man["status"] == "done" and man["stage"] == "sft" and man["base_model"] == ckpt, man
    assert man["config"]["steps"] == 3 and len(man["config_hash"]) == 12 and man["data_fingerprint"], man
    assert "transformers" in man["versions"], man
    # the same folder, other settings: refused before training, one line naming the difference
    r = cli("sft", "--set", f"model={ckpt}", f"data={data}", f"output_dir={out}", "steps=4", "batch_size=4", "lr=1e-3", home=d / "home")
    assert r.returncode == 2 and "steps 3 -> 4" in r.stderr and "overwrite=true" in r.stderr, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2, r.stderr
    assert json.loads((out / "llm_methods_run.json").read_text())["config"]["steps"] == 3  # the first run's record stands


def test_lora_saves_an_adapter_that_reloads(setup):
    d, ckpt, data = setup
    out = d / "lora-out"
    r = cli("lora", "--set", f"model={ckpt}", f"data={data}", f"output_dir={out}", "steps=3", "batch_size=4", home=d / "home")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "AutoPeftModelForCausalLM" in r.stdout, r.stdout
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ckpt), out)
    lora_b = [p for n, p in m.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: nonzero means the trained adapter loaded


def test_two_live_runs_and_a_dead_ones_lock(setup):
    d, ckpt, data = setup
    out = d / "busy"
    args = ("sft", "--set", f"model={ckpt}", f"data={data}", f"output_dir={out}", "steps=2000", "batch_size=4", "save_steps=20")
    exe = shutil.which("llm_methods")
    first = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**ENV, "LLM_METHODS_HOME": str(d / "home")})
    try:
        t0 = time.time()
        while not (out / ".llm_methods.lock").exists() and time.time() - t0 < 120: time.sleep(0.2)
        assert (out / ".llm_methods.lock").exists(), "the first run never took its lock"
        r = cli(*args, home=d / "home")
        assert r.returncode == 2 and "in use by another llm_methods run" in r.stderr, (r.returncode, r.stderr)
        while not list(out.glob("checkpoint-*/checkpoint_complete.json")) and time.time() - t0 < 300: time.sleep(0.5)
    finally:
        first.send_signal(signal.SIGKILL); first.wait()
    assert (out / ".llm_methods.lock").exists()  # kill -9 leaves it behind
    r = cli(*args, "resume=latest", home=d / "home")  # the same settings, resumed: the dead owner's lock is cleared
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cleared the lock of process" in r.stdout, r.stdout
    assert not (out / ".llm_methods.lock").exists()


@pytest.mark.parametrize("setting, msg", [
    ("n_train=0", "n_train must be a positive int"),
    ("n_train=-1", "n_train must be a positive int"),
    ("save_steps=-5", "save_steps must be an int >= 0"),
    ("lr=inf", "lr must be > 0 and finite"),
    ("seed=-1", "seed must be an int >= 0"),
    ("weight_decay=-0.1", "weight_decay must be >= 0"),
])
def test_bad_numbers_are_refused(setup, setting, msg):
    d, ckpt, data = setup
    r = cli("sft", "--set", setting, home=d / "home")
    assert r.returncode == 2 and msg in r.stderr, (r.returncode, r.stderr)


def test_bad_data_is_one_line(setup, tmp_path):
    d, ckpt, data = setup
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps({"messages": [{"role": "user", "content": "caf\u00e9"}]}).replace("\\u00e9", "\u00e9").encode("latin-1") + b"\n")
    r = cli("sft", "--set", f"model={ckpt}", f"data={bad}", "steps=2", home=d / "home")
    assert r.returncode == 2 and "is not UTF-8 text" in r.stderr and "latin1.jsonl" in r.stderr, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + data.read_bytes())
    r = cli("sft", "--set", f"model={ckpt}", f"data={bom}", "steps=1", "batch_size=4", home=d / "home")
    assert r.returncode == 0, r.stderr[-1500:]


def test_yaml_numbers_are_numbers(setup, tmp_path):
    d, *_ = setup
    (tmp_path / "r.yaml").write_text("lr: 1e-4\nsteps: 3\n")
    r = cli("sft", "--config", str(tmp_path / "r.yaml"), "--show-config", home=d / "home")
    assert r.returncode == 0 and json.loads(r.stdout)["lr"] == 1e-4, (r.stdout, r.stderr)
    (tmp_path / "bad.yaml").write_text("lr: [1e-4\nsteps: 3\n")
    r = cli("sft", "--config", str(tmp_path / "bad.yaml"), home=d / "home")
    assert r.returncode == 2 and "is not valid YAML at line" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_templates_real_checkpoints_ship(setup, tmp_path):
    "A chat template without {% generation %} markers (Llama 3.2, ChatML, Qwen2.5) trains; a tokenizer without one is one line."
    import re
    from transformers import AutoTokenizer
    d, ckpt, data = setup
    for name, tpl in (("no-markers", lambda t: re.sub(r"{%-?\s*(end)?generation\s*-?%}", "", t)), ("no-template", lambda t: None)):
        folder = tmp_path / name
        shutil.copytree(ckpt, folder)
        tok = AutoTokenizer.from_pretrained(folder); tok.chat_template = tpl(tok.chat_template)
        for f in folder.glob("chat_template*"): f.unlink()
        tok.save_pretrained(folder)
        assert (AutoTokenizer.from_pretrained(folder).chat_template is None) == (name == "no-template")
        r = cli("sft", "--set", f"model={folder}", f"data={data}", "steps=2", "batch_size=4", home=d / "home")
        if name == "no-markers":
            assert r.returncode == 0, r.stderr[-2000:]
            assert "no {% generation %} markers" in r.stdout, r.stdout
        else:
            assert r.returncode == 2 and "this tokenizer has none" in r.stderr and "Traceback" not in r.stderr, (r.returncode, r.stderr)


def test_real_checkpoint_takes_real_defaults(setup, tmp_path):
    "A checkpoint past `TINY_PARAMS` trains at the real-model lr (the run says so); the tiny base and an explicit lr keep theirs."
    d, ckpt, data = setup
    from llm_methods.base import random_checkpoint, tiny_base_path
    from llm_methods.stages import checkpoint_params, TINY_PARAMS
    big = random_checkpoint(d / "qwen2-11m", size="qwen2-11m", max_len=256)
    assert checkpoint_params(big) >= TINY_PARAMS > checkpoint_params(ckpt)
    def shown(model, *more):
        p = cli("sft", "--set", f"model={model}", *more, "--show-config", home=d / "home")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["lr"], p.stderr
    lr, note = shown(big)
    assert lr == 2e-5 and "lr=2e-05, the default for a real checkpoint" in note and "M parameters" in note, note
    assert shown(big, "lr=1e-4") == (1e-4, "")  # the user's own lr is kept, without a word
    assert shown(tiny_base_path())[0] == 3e-3 and shown(ckpt)[0] == 3e-3  # tiny models keep the swept tiny defaults
    lr, _ = cli_lr = shown("Qwen/Qwen2.5-0.5B")  # a hub id: real (nothing is downloaded to resolve a config)
    assert lr == 2e-5
    out = tmp_path / "out"
    p = cli("sft", "--set", f"model={big}", f"data={data}", "data_format=messages", "steps=2", "batch_size=2", "n_train=8",
            "logging_steps=1", f"output_dir={out}", home=d / "home")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "lr=2e-05, the default for a real checkpoint" in p.stdout, p.stdout[-2000:]
    assert json.loads((out / "llm_methods_run.json").read_text())["config"]["lr"] == 2e-5  # the rate it trained at


def test_every_training_stage_owns_and_fills_its_output_dir(setup, tmp_path):
    """Reward, DPO (and the preference stages that share its code), GRPO, PPO and pretraining (CLM and MLM) save to
    `output_dir` with the run manifest the SFT family writes, and refuse a folder that holds another run of theirs."""
    d, ckpt, data = setup
    from llm_methods.core import from_dict
    from llm_methods.stages import get_stage
    from llm_methods.base import tiny_world
    prefs = tmp_path / "prefs.jsonl"; prompts = tmp_path / "prompts.jsonl"
    prefs.write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n" for r in tiny_world().preferences("train")[:16]))
    prompts.write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in tiny_world().preferences("train")[:16]))
    quick = dict(steps=2, batch_size=4, record=False, progress=False)
    runs = [  # stage, settings, the class its load line names
        ("reward", dict(model=ckpt, data=str(prefs), n_train=8, logging_steps=1, **quick), "AutoModelForSequenceClassification"),
        ("dpo", dict(model=ckpt, data=str(prefs), n_train=8, logging_steps=1, **quick), "AutoModelForCausalLM"),
        ("orpo", dict(model=ckpt, data=str(prefs), n_train=8, logging_steps=1, **quick), "AutoModelForCausalLM"),
        ("grpo", dict(model=ckpt, num_generations=2, logging_steps=1, eval_n_per_task=1, **quick), "AutoModelForCausalLM"),
        ("ppo", dict(model=ckpt, reward_model=str(tmp_path / "reward"), data=str(prompts), ptx_coef=0.0, minibatch_size=4, ppo_epochs=1,
                     max_new_tokens=4, **{**quick, "batch_size": 8}), "AutoModelForCausalLM"),
        ("pretrain", dict(model="llama", steps=2, batch_size=4, eval_n=0, record=False, progress=False), "AutoModelForCausalLM"),
        ("pretrain", dict(model="bert", objective="mlm", steps=2, batch_size=4, record=False, progress=False), "BertForPreTraining"),
    ]
    for i, (name, kw, cls) in enumerate(runs):
        out = tmp_path / (name if name != "pretrain" else f"pretrain{i}")
        st = get_stage(name)
        res = st.run(from_dict(st.config, {**kw, "output_dir": str(out)}))
        man = json.loads((out / "llm_methods_run.json").read_text())
        assert man["status"] == "done" and man["stage"] == name and len(man["config_hash"]) == 12, (name, man)
        assert f"{cls}.from_pretrained" in man["load"] and res.saved_to == str(out) and res.load_with == man["load"], (name, man["load"])
        assert "transformers" in man["versions"] and "final_loss" in man["metrics"], (name, man)
        assert any(out.glob("*.safetensors")), (name, sorted(p.name for p in out.iterdir()))
        with pytest.raises(ValueError, match="with other settings .*steps 2 -> 3"):  # refused before any work
            st.run(from_dict(st.config, {**kw, "steps": 3, "output_dir": str(out)}))
