"""With `progress=False` a stage prints nothing per log step. Trainer replaces its progress bar by a `PrinterCallback` that prints
every log dict (`{'loss': ..., 'grad_norm': ...}`); `quiet_trainer` removes it. Before it did so for DPO, GRPO, the reward model,
BERT pretraining and AdaLoRA, their log dicts filled the notebooks' outputs."""
from llm_methods.base import tiny_base, tiny_world, tiny_base_path


def _assert_quiet(capfd, what):
    out, err = capfd.readouterr()
    assert "'loss'" not in out + err and "'grad_norm'" not in out + err, (what, (out + err)[-600:])


def test_trainer_stages_print_no_log_dicts(capfd):
    from llm_methods.rlhf.dpo import dpo_train, DPORunConfig
    from llm_methods.rlhf.reward import reward_train, reward_model, RewardRunConfig
    from llm_methods.rlhf.grpo import grpo_train, grpo_dataset, GRPORunConfig
    from llm_methods.lora.adalora import run_adalora, AdaLoraRunConfig
    from llm_methods.pretrain.clm import run_pretrain, PretrainConfig
    world = tiny_world(); prefs = world.preferences("train")[:16]
    model, tok = tiny_base(); capfd.readouterr()
    dpo_train(model, tok, prefs, DPORunConfig(steps=2, batch_size=8, logging_steps=1, progress=False)); _assert_quiet(capfd, "dpo")
    rm, rtok = reward_model(str(tiny_base_path()))
    reward_train(rm, rtok, prefs, RewardRunConfig(steps=2, batch_size=8, logging_steps=1, progress=False)); _assert_quiet(capfd, "reward")
    model, tok = tiny_base(); capfd.readouterr()
    grpo_train(model, tok, grpo_dataset("train", n=8), GRPORunConfig(steps=1, batch_size=8, num_generations=4, logging_steps=1, progress=False))
    _assert_quiet(capfd, "grpo")
    run_adalora(AdaLoraRunConfig(steps=12, tinit=2, tfinal=2, deltaT=2, logging_steps=1, eval_n_per_task=2, progress=False, record=False))
    _assert_quiet(capfd, "adalora")
    run_pretrain(PretrainConfig(objective="mlm", model="bert", steps=2, logging_steps=1, progress=False, record=False)); _assert_quiet(capfd, "mlm")


def test_offline_kernel_hub_notes_are_dropped_and_nothing_else(caplog):
    "bitsandbytes on an AVX512-BF16 CPU asks the kernel hub for a faster kernel at import; offline it logs two notes and uses its own."
    import logging, llm_methods.core  # noqa: F401  (installs the filters)
    hub, bnb = logging.getLogger("kernels._internals.hf_hub"), logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        hub.warning("Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because Hugging Face Hub is in offline mode.")
        bnb.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...", "offline")
        hub.warning("Skipping publisher trust check for 'someone/other-kernel' because Hugging Face Hub is in offline mode.")
    assert "quantization-bitsandbytes" not in caplog.text and "gemm_4bit_forward" not in caplog.text, caplog.text
    assert "someone/other-kernel" in caplog.text  # only the one known, harmless event is dropped


def test_renamed_checkpointing_warnings_are_dropped_and_nothing_else(tmp_path):
    "TRL 1.16 and PEFT 0.21 use names transformers 5.25 deprecated; those two FutureWarnings are dropped, no other warning."
    import warnings
    from llm_methods.core import quiet_known_warnings
    from trl import SFTConfig
    with warnings.catch_warnings(record=True) as seen:
        quiet_known_warnings()  # pytest restores the warning filters after collection, dropping those the import installed
        SFTConfig(output_dir=str(tmp_path), report_to=[], bf16=False, use_cpu=True)
        warnings.warn("`something_else` is deprecated and will be removed in v6.", FutureWarning)
    msgs = [str(w.message) for w in seen]
    assert not any("gradient_checkpointing" in m for m in msgs), msgs
    assert any("something_else" in m for m in msgs), msgs
