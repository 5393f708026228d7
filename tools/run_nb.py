"""Developer helper: execute a notebook in place so it is committed with its outputs (the notebooks are the docs).

Usage: python tools/run_nb.py nbs/00_core.ipynb [more.ipynb ...]
Runs with the working directory set to nbs/, like nbdev_test, and stops at the first failing cell.
"""
import sys, os, time, pathlib
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

def run_nb(path):
    path = pathlib.Path(path).absolute()
    nb = read_nb(path); t0 = time.time()
    cwd = os.getcwd(); os.chdir(path.parent)
    try:
        sh = CaptureShell(); sh.run_all(nb, exc_stop=True)
    finally:
        os.chdir(cwd)
        write_nb(nb, path)  # written even on failure, so the outputs up to the error can be read
    print(f"ran {path.name} in {time.time() - t0:.0f} s")

if __name__ == "__main__":
    for p in sys.argv[1:]: run_nb(p)
