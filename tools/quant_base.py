"""What 4-bit NF4 storage costs a base before any training: plain-style held-out exact match and perplexity, fp32 vs NF4.

    python tools/quant_base.py --model $LLM_METHODS_HOME/base/<key> --name s192w --out results/sweeps/qlora_width.jsonl

Appends one JSON line (kind "base") to --out; pair it with `tools/lr_sweep.py --methods lora,qlora --set model=...`.
"""
import argparse, json, os
from pathlib import Path

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True); ap.add_argument("--name", required=True); ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import llm_methods.core  # noqa: F401  (quiets known offline notes before transformers loads)
    from llm_methods.base import tiny_world
    from llm_methods.core import load_model, load_tokenizer
    from llm_methods.evaluate import evaluate, perplexity
    from llm_methods.lora.qlora import load_4bit
    items = tiny_world().heldout(tasks=["fact", "add", "rev"])
    texts = [it["plain"] + it["answer"] for it in items]
    tok, fp32 = load_tokenizer(a.model), load_model(a.model)
    nf4 = load_4bit(a.model, quant_type="nf4", double_quant=True)
    cfg = fp32.config
    row = dict(kind="base", base=a.name, hidden=cfg.hidden_size, layers=cfg.num_hidden_layers,
               params=sum(p.numel() for p in fp32.parameters()))
    home = os.environ.get("LLM_METHODS_HOME")
    row["model"] = a.model.replace(home, "$LLM_METHODS_HOME") if home else a.model
    for name, m in (("fp32", fp32), ("nf4", nf4)):
        row[f"{name}_plain_em"] = evaluate(m, tok, items, style="plain").score
        row[f"{name}_perplexity"] = perplexity(m, tok, texts)
    print(json.dumps(row))
    with open(a.out, "a") as f: f.write(json.dumps(row) + "\n")
