"""Reliability checks that need more than one process: a run killed with SIGKILL resumes to the very numbers of a run
that never stopped; plus the NaN guard, the interrupted-save rule, determinism and bad inputs, gathered in one place.

Everything trains the toy of `llm_methods.testing` (a 2-layer Llama of width 32, batch 8, CPU, one thread).
Run as a script, this file is also the worker the kill test starts:
`python tests/test_reliability.py worker sft,lora,dpo,ppo ROOT STEPS SLEEP_S RESUME` (each kind in ROOT/kind)."""
import json, os, random, signal, subprocess, sys, time, shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # the reference run in this process and the workers must reduce in the same order
STEPS, SAVE = 10, 2  # 48 rows / batch 8 = 6 steps an epoch: the resumed runs cross an epoch boundary
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def _losses(history, after=0):
    "(step, loss) per logged step; for PPO every number of its step record but the wall time."
    if history and "kl" in history[0]:
        return [tuple([int(h["step"])] + [h[k] for k in sorted(h) if k not in ("step", "time_s") and isinstance(h[k], float)])
                for h in history if h["step"] > after]
    return [(int(h["step"]), h["loss"]) for h in history if h["step"] > after]


def _dpo_rows():
    from llm_methods.base import tiny_world
    return tiny_world().preferences("train")[:48]


def toy_ppo(parts, steps, save_dir=None, resume=None, sleep_s=0):
    "Our PPO (06b) on the toy: length of the reply as the reward, adaptive KL, score normalisation, PPO-ptx."
    from llm_methods.core import seed_everything
    from llm_methods.rlhf.ppo import PPOConfig, PPOTrainer
    from llm_methods.reliability import latest_checkpoint
    make_model, tok, rows = parts
    seed_everything(0)
    cfg = PPOConfig(steps=steps, batch_size=8, minibatch_size=4, ppo_epochs=1, max_new_tokens=4, adaptive_kl=True,
                    kl_horizon=100, device="cpu", progress=False, record=False, save_every=SAVE if save_dir else 0,
                    save_dir=save_dir, resume_from=resume)
    tr = PPOTrainer(make_model(), tok, cfg=cfg, questions=[r["messages"][0]["content"] for r in rows],
                    reward_fn=lambda qs, replies: [len(r) / 8 for r in replies])
    if resume and (ck := latest_checkpoint(save_dir, prefix="step")) is not None: tr.load(ck)  # what run_ppo does
    tr.train(callback=(lambda rec: time.sleep(sleep_s)) if sleep_s else None)
    return {"model": tr.model, "history": tr.history}


def toy_run(kind, parts, steps, output_dir=None, resume=None, callbacks=None):
    "The toy run of `kind`: sft and lora through `sft_train`, dpo through `dpo_train` (reference = a frozen copy)."
    from llm_methods.testing import toy_train
    if kind == "ppo": return toy_ppo(parts, steps, output_dir, resume)
    if kind != "dpo":
        return toy_train(parts, kind, steps=steps, save_steps=SAVE if output_dir else 0, output_dir=output_dir,
                         resume=resume, callbacks=callbacks)
    from llm_methods.rlhf.dpo import DPORunConfig, dpo_train
    make_model, tok, _ = parts
    cfg = DPORunConfig(steps=steps, batch_size=8, logging_steps=1, max_length=64, device="cpu", progress=False, record=False,
                       checkpoint_dir=output_dir, save_steps=SAVE if output_dir else 0, resume=resume)
    return dpo_train(make_model(), tok, _dpo_rows(), cfg, callbacks=callbacks)


def worker(kinds, root, steps, sleep_s, resume):
    "Train the toy of each of `kinds` (comma-separated) into `root/kind`, saving every SAVE steps and sleeping `sleep_s` after each step so a kill can land mid-run."
    for kind in kinds.split(","): _work(kind, str(Path(root) / kind), steps, sleep_s, resume)


def _work(kind, out, steps, sleep_s, resume):
    from transformers import TrainerCallback
    from safetensors.torch import save_file
    from llm_methods.testing import toy_parts, trained_state

    class Sleep(TrainerCallback):
        def on_step_end(self, args, state, control, **kw): time.sleep(sleep_s)

    if kind == "ppo": info = toy_ppo(toy_parts(), steps, out, resume or None, sleep_s)
    else: info = toy_run(kind, toy_parts(), steps, out, resume or None, [Sleep()] if sleep_s else None)
    save_file({k: v.contiguous() for k, v in trained_state(info["model"]).items()}, str(Path(out) / "final.safetensors"))
    (Path(out) / "result.json").write_text(json.dumps({"history": _losses(info["history"]), "resumed_from": resume}))


def _start(kinds, root, sleep_s, resume, log):
    return subprocess.Popen([sys.executable, __file__, "worker", kinds, str(root), str(STEPS), str(sleep_s), resume or ""],
                            env=ENV, stdout=log, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def parts():
    from llm_methods.testing import toy_parts
    return toy_parts()


# --- kill -9 and resume -------------------------------------------------------------------------------------------

KINDS = ("sft", "lora", "dpo", "ppo")
PREFIX = {"ppo": "step"}  # our PPO names its checkpoints step-N; Trainer checkpoint-N

def test_kill_9_then_resume_equals_uninterrupted(parts, tmp_path):
    "SFT, LoRA, DPO and PPO workers (run side by side to save wall time) are SIGKILLed at a random moment after a complete checkpoint at step >= 4, then the same command with resume='latest' finishes each: losses and final weights equal an uninterrupted run's, bit for bit."
    from safetensors.torch import load_file
    from llm_methods.testing import trained_state, same_state
    from llm_methods.reliability import latest_checkpoint, checkpoint_problem
    outs = {k: tmp_path / k for k in KINDS}
    logs = {k: open(tmp_path / f"{k}.log", "w") for k in KINDS}
    procs = {k: _start(k, tmp_path, 0.4, None, logs[k]) for k in KINDS}
    full = {k: toy_run(k, parts, STEPS) for k in KINDS}  # the references, never interrupted (while the workers start)
    rng, t0, due, killed = random.Random(0), time.time(), {}, {}
    while len(killed) < len(KINDS):
        for k, p in procs.items():
            if k in killed: continue
            if k not in due:
                ck = latest_checkpoint(outs[k], PREFIX.get(k, "checkpoint"))
                if ck is not None and int(ck.name.split("-")[1]) >= 4:
                    due[k] = time.time() + rng.uniform(0, 2.0)  # a random moment in the 2.4+ s left: mid-step, mid-save or between
            if k in due and time.time() >= due[k]:
                os.kill(p.pid, signal.SIGKILL); p.wait(); killed[k] = time.time()
            elif p.poll() is not None:
                raise AssertionError(f"{k} worker ended before it could be killed:\n{(tmp_path / f'{k}.log').read_text()[-3000:]}")
        assert time.time() - t0 < 200, f"no checkpoint >= 4 after 200 s: {sorted(set(KINDS) - set(killed))}"
        time.sleep(0.02)
    for k, p in procs.items():
        logs[k].close()
        assert p.returncode == -signal.SIGKILL, k
        assert not (outs[k] / "result.json").exists(), f"{k} finished before the kill: the test proved nothing"
        ck = latest_checkpoint(outs[k], PREFIX.get(k, "checkpoint"))
        assert ck is not None and checkpoint_problem(ck) is None and 4 <= int(ck.name.split("-")[1]) < STEPS, (k, ck)
        broken = sorted(d.name for d in outs[k].iterdir() if d.is_dir() and d != ck and checkpoint_problem(d))
        print(f"{k}: killed {killed[k] - t0:.1f} s in, newest complete checkpoint {ck.name}, incomplete: {broken}")
    # the same command with resume="latest" continues each from its newest complete checkpoint (one fresh process
    # resumes all four, one after the other: a process start costs ~15 s of CPU here)
    p = _start(",".join(KINDS), tmp_path, 0, "latest", subprocess.PIPE)
    log, _ = p.communicate(timeout=300)
    assert p.returncode == 0, log[-3000:]
    for k in KINDS:
        res = json.loads((outs[k] / "result.json").read_text())
        # bit-exact on the CPU: Trainer restores weights/adapters, AdamW moments, the cosine schedule, the RNG states and the
        # data position (it skips the batches already seen); PPOTrainer.load the policy + value head, optimizer, adaptive
        # KL coefficient, score normalisation and torch/numpy/python/prompt-sampler RNGs (the reference model is rebuilt
        # from the same start); one thread makes every reduction run in the same order
        assert [tuple(x) for x in res["history"]] == _losses(full[k]["history"]), (k, res["history"], _losses(full[k]["history"]))
        assert same_state(load_file(str(outs[k] / "final.safetensors")), trained_state(full[k]["model"])), k
        assert latest_checkpoint(outs[k], PREFIX.get(k, "checkpoint")).name == f"{PREFIX.get(k, 'checkpoint')}-{STEPS}", k


def test_resume_names_an_incomplete_checkpoint(parts, tmp_path):
    from llm_methods.testing import toy_train
    ck = tmp_path / "run" / "checkpoint-4"; ck.mkdir(parents=True); (ck / "model.safetensors").write_bytes(b"half")
    with pytest.raises(ValueError, match="checkpoint-4.*no checkpoint_complete.json"):
        toy_train(parts, steps=2, output_dir=str(tmp_path / "run"), resume=str(ck))
    from llm_methods.sft import SFTRunConfig
    with pytest.raises(ValueError, match="resume needs output_dir"):
        SFTRunConfig(resume="latest")


# --- NaN / inf ------------------------------------------------------------------------------------------------------

def test_nan_stops_at_that_step_and_keeps_last_good_checkpoint(parts, tmp_path):
    from safetensors.torch import load_file
    from llm_methods.testing import toy_train, PoisonAt
    from llm_methods.reliability import NonFiniteLossError, latest_checkpoint
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError) as ei:
        toy_train(parts, steps=8, save_steps=2, output_dir=str(out), callbacks=[PoisonAt(5)])
    e = ei.value
    assert e.step == 5 and "step 5" in str(e)
    for hint in ("learning rate", "bf16", "max_grad_norm", "checkpoint-4"): assert hint in str(e), hint
    assert Path(e.last_checkpoint).name == "checkpoint-4" == latest_checkpoint(out).name
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert all(t.isfinite().all() for t in load_file(str(out / "checkpoint-4" / "model.safetensors")).values())
    # the guard can be turned off: the same poisoned run then trains on to the end (with NaN weights)
    info = toy_train(parts, steps=6, nan_guard=False, callbacks=[PoisonAt(5)])
    assert info["trainer"].state.global_step == 6
    assert not all(p.isfinite().all() for p in info["model"].parameters())


def test_nan_guard_in_dpo(parts):
    from llm_methods.testing import PoisonAt
    from llm_methods.reliability import NonFiniteLossError
    with pytest.raises(NonFiniteLossError, match="step 3"):
        toy_run("dpo", parts, 4, callbacks=[PoisonAt(3)])


def test_pretraining_guard_and_resume(parts, tmp_path):
    "train_causal_lm (00c, the base and `pretrain` stage) has the same guard and resume: NaN stops at its step; stop + resume equals a straight run."
    from llm_methods.base import CLMConfig, train_causal_lm, tiny_world
    from llm_methods.testing import PoisonAt, StopAfter, trained_state, same_state
    from llm_methods.reliability import NonFiniteLossError, latest_checkpoint
    make_model, tok, _ = parts
    texts = tiny_world().corpus()[:300]
    def run(out=None, resume=None, cbs=None, seed=0):
        m = make_model(seed)
        cfg = CLMConfig(steps=6, batch_size=8, seq_len=32, lr=3e-3, logging_steps=1, save_steps=2 if out else 0, output_dir=out,
                        resume=resume, device="cpu", progress=False, seed=seed)
        return train_causal_lm(m, tok, texts, cfg, callbacks=cbs), m
    with pytest.raises(NonFiniteLossError, match="step 3"):
        run(str(tmp_path / "nan"), cbs=[PoisonAt(3)])
    assert latest_checkpoint(tmp_path / "nan").name == "checkpoint-2"
    (full, m_full) = run()
    run(str(tmp_path / "r"), cbs=[StopAfter(5)])
    (res, m_res) = run(str(tmp_path / "r"), resume="latest")
    assert _losses(res["history"]) == _losses(full["history"]) and len(full["history"]) == 6
    assert same_state(trained_state(m_res), trained_state(m_full))


# --- interrupted save ---------------------------------------------------------------------------------------------

def test_interrupted_save_is_never_latest(parts, tmp_path):
    from transformers.trainer_utils import get_last_checkpoint
    from llm_methods.testing import toy_train, FailSaveAt
    from llm_methods.reliability import latest_checkpoint, checkpoint_problem
    out = tmp_path / "full-disk"
    with pytest.raises(OSError, match="No space left"):
        toy_train(parts, steps=8, save_steps=2, output_dir=str(out), callbacks=[FailSaveAt(6)])
    assert (out / "checkpoint-6" / "model.safetensors").exists() and not (out / "checkpoint-6" / "optimizer.pt").exists()
    assert Path(get_last_checkpoint(out)).name == "checkpoint-6"  # the library alone would resume from the broken one
    assert latest_checkpoint(out).name == "checkpoint-4"
    assert "no checkpoint_complete.json" in checkpoint_problem(out / "checkpoint-6")
    info = toy_train(parts, steps=8, save_steps=2, output_dir=str(out), resume="latest")
    assert info["trainer"].state.global_step == 8 and latest_checkpoint(out).name == "checkpoint-8"


# --- determinism --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sft", "lora"])
def test_same_seed_same_numbers(kind, parts):
    from llm_methods.testing import toy_train, trained_state, same_state
    a, b, c = (toy_train(parts, kind, steps=4, seed=s) for s in (0, 0, 1))
    assert _losses(a["history"]) == _losses(b["history"])
    assert same_state(trained_state(a["model"]), trained_state(b["model"]))
    assert _losses(a["history"]) != _losses(c["history"])  # a different seed must change something


# --- bad inputs: one message naming the problem, before any heavy work ---------------------------------------------

def _cli(*args):
    exe = shutil.which("llm_methods")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "llm_methods.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)


@pytest.mark.parametrize("stage, recipe, msg", [
    ("lora", "r: 8\nrank: 4\n", "unknown key(s) for LoraRunConfig: 'rank'"),
    ("lora", "r: 0\n", "LoraRunConfig.r must be a positive int"),
    ("sft", "lr: -0.001\n", "SFTRunConfig.lr must be > 0"),
    ("dpo", "save_steps: 10\n", "need checkpoint_dir"),
    ("sft", "resume: latest\n", "SFTRunConfig.resume needs output_dir"),
])
def test_bad_yaml_recipe(stage, recipe, msg, tmp_path):
    (tmp_path / "r.yaml").write_text(recipe)
    r = _cli(stage, "--config", str(tmp_path / "r.yaml"), "--show-config")
    assert r.returncode == 2 and msg in r.stderr, (r.returncode, r.stderr)


def test_unknown_stage():
    r = _cli("sftt")
    assert r.returncode == 2 and "invalid choice: 'sftt'" in r.stderr, r.stderr


def test_bad_inputs_in_process(parts, tmp_path):
    from llm_methods.core import load_model, LoadError
    from llm_methods.sft import SFTRunConfig, sft_train, load_model_and_tokenizer
    make_model, tok, rows = parts
    with pytest.raises(LoadError, match="does not exist"):
        load_model_and_tokenizer(SFTRunConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(ValueError, match="max_length=512 is longer than the model's context of 128 positions"):
        sft_train(make_model(), tok, rows, SFTRunConfig(steps=2, max_length=512, device="cpu", progress=False))
    with pytest.raises(ValueError, match="paged optimizer.*needs a CUDA GPU"):
        sft_train(make_model(), tok, rows, SFTRunConfig(steps=2, device="cpu", progress=False), optim="paged_adamw_32bit")
    with pytest.raises(ValueError, match="fp16=True .* needs a GPU"):
        sft_train(make_model(), tok, rows, SFTRunConfig(steps=2, device="cpu", progress=False), fp16=True)
    m = make_model(); m.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="attn_implementation='flash_attention_2', which needs a CUDA GPU"):
        sft_train(m, tok, rows, SFTRunConfig(steps=2, device="cpu", progress=False))
    for bad, msg in [({"prompt": "q", "completion": "a"}, "row 1 has no 'messages' column"),
                     ({"messages": "hello"}, "row 1: 'messages' must be list"),
                     ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]}, "row 1, message 0: expected"),
                     ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}, "row 1: the assistant's answer is empty")]:
        with pytest.raises(ValueError, match=msg):
            sft_train(make_model(), tok, [rows[0], bad], SFTRunConfig(steps=2, device="cpu"))
    # safe loading: a checkpoint with only pickled weights is refused unless the caller opts in
    pkl = tmp_path / "pickled"; m = make_model(); m.config.save_pretrained(pkl)
    torch.save(m.state_dict(), pkl / "pytorch_model.bin")
    with pytest.raises(LoadError, match="use_safetensors=False"):
        load_model(pkl)
    assert torch.equal(load_model(pkl, use_safetensors=False).model.embed_tokens.weight, m.model.embed_tokens.weight)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    import warnings; warnings.filterwarnings("ignore")
    _, _, kind, out, steps, sleep_s, resume = sys.argv
    worker(kind, out, int(steps), float(sleep_s), resume)
