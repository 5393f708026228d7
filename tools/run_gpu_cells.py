"""Developer helper: run only the `#| gpu` / `#| multigpu` cells of notebooks on the GPU machine and keep their outputs.

Usage: python tools/run_gpu_cells.py OUT.json nbs/02_sft.ipynb [more.ipynb ...] [--flags gpu,multigpu] [--deadline S]
The CPU cells are not re-run (CI runs them): each notebook's top-level import lines run, then `from llm_methods.<default_exp> import *`,
then its GPU cells in order, in one namespace, with the working directory set to nbs/ as nbdev_test does. A failing cell is
recorded with its traceback and the next one still runs. OUT.json maps notebook -> cell id -> outputs (nbformat), which
`python tools/run_gpu_cells.py --merge OUT.json` writes into the notebooks (only those cells, nothing else).
"""
import ast, io, json, os, re, sys, time, traceback, contextlib, pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

def _flags(src:str) -> set:
    return {m.group(1) for l in src.splitlines() if (m := re.match(r"#\|\s*([\w-]+)\s*$", l.strip()))}

class _Tee(io.TextIOBase):
    def __init__(self, *ss): self.ss = ss
    def write(self, s):
        for x in self.ss: x.write(s)
        return len(s)
    def flush(self):
        for x in self.ss: x.flush()

def _run_cell(src:str, ns:dict) -> tuple[list, float]:
    "Execute `src` in `ns` like a notebook cell (the last expression is displayed); nbformat outputs and seconds."
    out, err, outputs, t = io.StringIO(), io.StringIO(), [], time.time()
    tree = ast.parse(src)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    try:
        with contextlib.redirect_stdout(_Tee(out, sys.__stdout__)), contextlib.redirect_stderr(_Tee(err, sys.__stderr__)):
            exec(compile(tree, "<cell>", "exec"), ns)
            val = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns) if last is not None else None
        error = None
    except BaseException as e:  # keep going: record it like Jupyter does
        val, error = None, e
    if out.getvalue(): outputs.append({"name": "stdout", "output_type": "stream", "text": out.getvalue()})
    if err.getvalue(): outputs.append({"name": "stderr", "output_type": "stream", "text": err.getvalue()})
    if val is not None:
        data = {"text/plain": repr(val)}
        if hasattr(val, "_repr_html_"): data["text/html"] = val._repr_html_()
        outputs.append({"output_type": "execute_result", "data": data, "metadata": {}, "execution_count": None})
    if error is not None:
        outputs.append({"output_type": "error", "ename": type(error).__name__, "evalue": str(error)[:2000],
                        "traceback": traceback.format_exception(error)[-6:]})
    return outputs, time.time() - t

def run(out_json:str, paths:list[str], flags=("gpu", "multigpu"), deadline:float|None=None) -> dict:
    t0, res = time.time(), {}
    for p in paths:
        p = pathlib.Path(p).resolve(); nb = json.loads(p.read_text())
        meta = next((''.join(c["source"]) for c in nb["cells"] if "default_exp" in ''.join(c["source"])), "")
        m = re.search(r"default_exp\s+(\S+)", meta)
        ns = {"__name__": "__main__"}; cells = {}
        cwd = os.getcwd(); os.chdir(p.parent)
        try:
            _run_cell("import os, sys, time, json, torch\nfrom pathlib import Path\nfrom fastcore.test import *", ns)
            for c in nb["cells"]:   # every top-level import statement of the CPU cells, one at a time (a failing one is skipped)
                src = ''.join(c["source"])
                if c["cell_type"] != "code" or _flags(src) & set(flags): continue
                try: tree = ast.parse(src)
                except SyntaxError: continue  # a cell with notebook magics
                for node in tree.body:
                    if isinstance(node, (ast.Import, ast.ImportFrom)): _run_cell(ast.unparse(node), ns)
            if m: _run_cell(f"from llm_methods.{m.group(1)} import *", ns)
            for c in nb["cells"]:
                src = ''.join(c["source"])
                if c["cell_type"] != "code" or not (_flags(src) & set(flags)): continue
                if deadline and time.time() - t0 > deadline:
                    print(f"SKIPPED (deadline) {p.name} cell {c.get('id')}", flush=True); continue
                print(f"=== {p.name} cell {c.get('id')}", flush=True)
                outs, s = _run_cell(src, ns)
                cells[c["id"]] = {"outputs": outs, "seconds": round(s, 1), "ok": not any(o["output_type"] == "error" for o in outs)}
                print(f"--- {p.name} cell {c.get('id')}: {'ok' if cells[c['id']]['ok'] else 'FAILED'} in {s:.0f} s", flush=True)
        finally: os.chdir(cwd)
        res[str(p.relative_to(ROOT))] = cells
        pathlib.Path(out_json).write_text(json.dumps(res, indent=1))   # after every notebook: nothing lost on a timeout
    return res

def merge(out_json:str):
    "Write the recorded outputs into the notebooks' cells (matched by cell id)."
    res = json.loads(pathlib.Path(out_json).read_text())
    for nbp, cells in res.items():
        p = ROOT / nbp; nb = json.loads(p.read_text()); n = 0
        for c in nb["cells"]:
            if c.get("id") in cells: c["outputs"] = cells[c["id"]]["outputs"]; c["execution_count"] = None; n += 1
        p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n"); print(f"{nbp}: {n} cell(s) merged")

if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--merge": merge(a[1]); sys.exit(0)
    flags, deadline = ("gpu", "multigpu"), None
    if "--flags" in a: i = a.index("--flags"); flags = tuple(a[i + 1].split(",")); del a[i:i + 2]
    if "--deadline" in a: i = a.index("--deadline"); deadline = float(a[i + 1]); del a[i:i + 2]
    r = run(a[0], a[1:], flags, deadline)
    sys.exit(0 if all(c["ok"] for cells in r.values() for c in cells.values()) else 1)
