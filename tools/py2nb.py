"""Developer helper: turn a percent-format script (`# %%` cells) into a notebook in nbs/, optionally executing it.

Usage: python tools/py2nb.py SRC.py [--out nbs/NAME.ipynb] [--run]
The notebook in nbs/ is the source of truth once written; this is only a convenient way to author one.
"""
import sys, argparse, pathlib, jupytext, nbformat

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("src"); ap.add_argument("--out"); ap.add_argument("--run", action="store_true")
    a = ap.parse_args()
    src = pathlib.Path(a.src); out = pathlib.Path(a.out or f"nbs/{src.stem}.ipynb")
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
    nbformat.write(nb, out)
    if a.run:
        from tools.run_nb import run_nb
        run_nb(out)
    print("wrote", out)

if __name__ == "__main__": main()
