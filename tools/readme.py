"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed everywhere).

Usage: python tools/readme.py [--check]   (--check: exit 1 if README.md is out of date)
Markdown cells are copied; code cells become ```python blocks; text outputs become ``` blocks.
"""
import sys, json, pathlib

def render(nb_path="nbs/index.ipynb") -> str:
    nb = json.loads(pathlib.Path(nb_path).read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"])
        if c["cell_type"] == "markdown": parts.append(src)
        elif c["cell_type"] == "code":
            if src.lstrip().startswith("#| hide"): continue
            parts.append("```python\n" + src + "\n```")
            for o in c.get("outputs", []):
                txt = "".join(o.get("text", "")) or "".join(o.get("data", {}).get("text/markdown", "")) or "".join(o.get("data", {}).get("text/plain", ""))
                if txt: parts.append("```\n" + txt.rstrip() + "\n```" if "text/markdown" not in o.get("data", {}) else txt)
    return "\n\n".join(parts).rstrip() + "\n"

if __name__ == "__main__":
    out = render(); p = pathlib.Path("README.md")
    if "--check" in sys.argv:
        if p.read_text() != out: print("README.md is out of date: run python tools/readme.py"); sys.exit(1)
    else: p.write_text(out); print("wrote README.md")
