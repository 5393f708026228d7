"""Developer helper: execute notebooks in place so they are committed with their outputs (the notebooks are the docs).

Usage: python tools/run_nb.py nbs/00_core.ipynb [more.ipynb ...]
Like nbdev_test it runs with the working directory set to nbs/ and skips cells flagged with settings.ini's tst_flags
(notest gpu multigpu slow; RUN_NB_FLAGS=slow,gpu runs the named ones too); it stops at the first failing cell (the notebook is still written, so the outputs up to
the error can be read), prints the slowest cells, and exits 1 if any notebook failed.
"""
import sys, os, time, pathlib, re, configparser, traceback
from execnb.nbio import read_nb, write_nb
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from clean_outputs import clean
from execnb.shell import CaptureShell

_cfg = configparser.ConfigParser(); _cfg.read(pathlib.Path(__file__).resolve().parents[1] / "settings.ini")
FLAGS = set(_cfg["DEFAULT"].get("tst_flags", "notest").split()) - set(os.environ.get("RUN_NB_FLAGS", "").split(","))  # RUN_NB_FLAGS=slow runs those too

def skipped(cell) -> bool:
    if cell.cell_type != "code": return True
    for l in cell.source.splitlines():
        m = re.match(r"#\|\s*([\w-]+)", l.strip())
        if m and m.group(1) in FLAGS: return True
        if re.match(r"#\|\s*eval:\s*false", l.strip()): return True
    return False

def run_nb(path) -> bool:
    path = pathlib.Path(path).absolute(); nb = read_nb(path); t0 = time.time()
    cwd = os.getcwd(); os.chdir(path.parent); times = []; ok = True
    sh = CaptureShell()
    try:
        for i, cell in enumerate(nb.cells):
            if skipped(cell): continue
            cell.outputs = []  # a cell that prints nothing now must not keep what an earlier run left (an old traceback, say)
            t = time.time(); sh.cell(cell)
            times.append((time.time() - t, i, cell.source.splitlines()[0][:60] if cell.source else ""))
            if sh.exc:
                print(f"ERROR in {path.name} cell {i}:\n{cell.source[:300]}"); traceback.print_exception(sh.exc); ok = False; break
    finally:
        os.chdir(cwd)
        write_nb(nb, path)
        clean(path)  # final progress-bar states, no machine paths (tools/clean_outputs.py)
    for t, i, s in sorted(times, reverse=True)[:5]: print(f"  {t:6.1f} s  cell {i}: {s}")
    print(f"ran {path.name} in {time.time() - t0:.0f} s" + ("" if ok else " (FAILED)"))
    return ok

if __name__ == "__main__":
    results = [run_nb(p) for p in sys.argv[1:]]
    sys.exit(0 if all(results) else 1)
