"""Saved notebook outputs are documentation: keep them to what a reader should see, and check that they stay so.

Usage: python tools/clean_outputs.py [--check] [nbs/X.ipynb ...]   (default: every notebook in nbs/)

Cleaning rewrites text outputs, and only in two ways that keep what they say:
* progress-bar redraws collapse to their final state: each line keeps the text after its last carriage return, which is
  what a terminal shows once the bar is done; and a finished bar's line (`Loading weights: 100%|####| 12/12 [...]`)
  is dropped from stream outputs, since it tells a reader nothing the cell's own output does not (a stream left empty goes);
* machine paths become names that mean the same thing on any machine: the repository root is dropped (paths become
  relative to it), `.../site-packages/` becomes `<site-packages>/`, the default cache `~/.cache/llm_methods` becomes
  `$LLM_METHODS_HOME`, a temporary folder `/tmp/...` becomes `$TMP/...`, and an interpreter path becomes `python`.
`--check` changes nothing and exits 1 if any notebook has a redraw, a progress bar, a machine path, a text output over
`MAX_TEXT`, or a stderr block that the markdown cell right after it does not explain (it must begin "The warning above").
It also reports the stderr blocks and output bytes in all.
`tools/run_nb.py` cleans every notebook it saves.
"""
import json, pathlib, re, sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# a text output longer than this is a log, not something a reader reads (about 250 lines of 80 characters)
MAX_TEXT = 20_000
_PATHS = [
    (re.compile(r"(?:/[\w.+-]+)*/(?:site|dist)-packages/"), "<site-packages>/"),
    (re.compile(r"(?:/[\w.+-]+)*/\.cache/llm_methods(?:/[\w.-]+-[0-9a-f]{10})?"), "$LLM_METHODS_HOME"),
    (re.compile(r"(?:/[\w.+-]+)*/bin/python[\d.]*\b"), "python"),
    (re.compile(r"/tmp/"), "$TMP/"),
]
BAR = re.compile(r"^.*\d+%\|[^|\n]*\| *\d+/\d+ \[[^\]\n]*\]\s*$", re.M)  # a tqdm bar's (final) state line
EXPLAINED = re.compile(r"^\W*the warnings? above", re.I)  # how the markdown cell after a cell with stderr output starts
MACHINE_PATH = re.compile(r"(?<![\w$>.])/(?:work|tmp|root|home|Users|opt|usr|var)/")


def _collapse(text: str) -> str:
    "Each line's final state: the text after its last carriage return."
    return "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line else line for line in text.split("\n"))


def clean_text(text: str, root: str = str(ROOT)) -> str:
    text = _collapse(text).replace(root + "/", "").replace(root, ".")
    for pat, sub in _PATHS: text = pat.sub(sub, text)
    return text


def _texts(nb):
    "Every text output of a notebook, as (output, key) where output[key] is a string or a list of strings."
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            if "text" in o: yield o, "text"
            for k in ("text/plain", "text/markdown"):
                if k in o.get("data", {}): yield o["data"], k


def _get(o, k): return "".join(o[k]) if isinstance(o[k], list) else o[k]


def _set(o, k, s):
    if isinstance(o[k], list): o[k] = [l for l in re.split(r"(?<=\n)", s) if l]
    else: o[k] = s


def problems(nb) -> list[str]:
    out = []
    for o, k in _texts(nb):
        t = _get(o, k)
        if "\r" in t: out.append(f"progress-bar redraw: {t[:60]!r}")
        m = BAR.search(t) if o.get("output_type") == "stream" else None
        if m: out.append(f"progress bar: {m.group(0)[:60]!r}")
        m = MACHINE_PATH.search(t)
        if m: out.append(f"machine path: {t[max(m.start() - 20, 0):m.start() + 50]!r}")
        if len(t) > MAX_TEXT: out.append(f"text output of {len(t):,} characters (limit {MAX_TEXT:,})")
    cells = nb["cells"]
    for i, c in enumerate(cells):  # a warning a reader sees must be explained where they see it
        err = next((_get(o, "text") for o in c.get("outputs", []) if o.get("name") == "stderr"), None)
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        said = nxt is not None and nxt["cell_type"] == "markdown" and EXPLAINED.search("".join(nxt["source"]))
        if err is not None and not said:
            out.append(f"unexplained stderr in cell {i}: {err.strip().splitlines()[0][:80]!r} (say what it means in a markdown "
                       f"cell right after it that begins 'The warning above')")
    return out


def stats(nb) -> dict:
    return {"stderr": sum(o.get("name") == "stderr" for c in nb["cells"] for o in c.get("outputs", [])),
            "bytes": sum(len(json.dumps(o)) for c in nb["cells"] for o in c.get("outputs", []))}


def clean(path) -> bool:
    "Clean one notebook in place; True if it changed."
    path = pathlib.Path(path); nb = json.loads(path.read_text())
    changed = False
    for o, k in _texts(nb):
        t = _get(o, k); new = clean_text(t)
        if o.get("output_type") == "stream" and BAR.search(new): new = re.sub(r"\n{2,}", "\n", BAR.sub("", new)).lstrip("\n")
        if new != t: _set(o, k, new); changed = True
    for c in nb["cells"]:  # streams that held only progress bars
        kept = [o for o in c.get("outputs", []) if not (o.get("output_type") == "stream" and not _get(o, "text"))]
        if len(kept) != len(c.get("outputs", [])): c["outputs"] = kept; changed = True
    if changed: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


def main(argv):
    check = "--check" in argv
    paths = [pathlib.Path(a) for a in argv if not a.startswith("--")] or sorted((ROOT / "nbs").glob("*.ipynb"))
    bad, tot = 0, {"stderr": 0, "bytes": 0}
    for p in paths:
        nb = json.loads(p.read_text())
        if not check and clean(p): nb = json.loads(p.read_text())
        probs, st = problems(nb), stats(nb)
        tot = {k: tot[k] + st[k] for k in tot}
        for x in probs[:3]: print(f"{p.name}: {x}")
        if len(probs) > 3: print(f"{p.name}: ... {len(probs) - 3} more")
        bad += bool(probs)
    print(f"{len(paths)} notebooks: {bad} with problems; {tot['stderr']} stderr blocks, {tot['bytes'] / 2**20:.2f} MiB of outputs")
    return 1 if bad and check else 0


if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
