"""Every third-party module the package, the notebooks, the tests and the tools import is declared, and the lock
(`constraints.txt`) pins what is declared.

A module that some other package happens to pull in (scipy came with the machine's Python, psutil with accelerate)
works on one machine and fails on the next; this test reads the imports themselves, so an undeclared one fails here
first, on any machine.
"""
import ast, configparser, importlib.metadata as md, json, pathlib, re, shlex, sys
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CFG = configparser.ConfigParser(delimiters=["="]); CFG.read(ROOT / "settings.ini")
RUNTIME = shlex.split(CFG["DEFAULT"]["requirements"])
DEV = shlex.split(CFG["DEFAULT"]["dev_requirements"])
# imported only where a GPU machine or an optional engine provides them, each behind a try/except or a `#| gpu` cell
OPTIONAL = {"pynvml", "flash_attn", "liger_kernel", "mpi4py", "apex", "triton", "vllm", "IPython", "google"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _imports(code: str) -> set[str]:
    "Top-level names imported by `code` (absolute imports only)."
    try: tree = ast.parse(code)
    except SyntaxError: return set()  # notebook cells with shell magics
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import): out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module: out.add(n.module.split(".")[0])
    return out


def _sources():
    for p in sorted((ROOT / "llm_methods").rglob("*.py")): yield p, p.read_text(), RUNTIME
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells = [c for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]
        for c in cells:
            s = "".join(c["source"])
            s = "\n".join(l for l in s.splitlines() if not l.lstrip().startswith(("!", "%")))
            yield p, s, RUNTIME if "#| export" in s else RUNTIME + DEV
    for d in ("tests", "tools", "benchmarks"):
        for p in sorted((ROOT / d).rglob("*.py")): yield p, p.read_text(), RUNTIME + DEV


def test_every_import_is_declared():
    dists = md.packages_distributions()  # import name -> distributions that provide it
    local = {"llm_methods", "tools", "benchmarks", "lib"} | {p.stem for d in ("tests", "tools") for p in (ROOT / d).glob("*.py")}
    missing = {}
    for path, code, declared in _sources():
        names = {_name(r) for r in declared}
        for mod in _imports(code):
            if mod in sys.stdlib_module_names or mod in local or mod in OPTIONAL or mod.startswith("_"): continue
            provided = {d.lower().replace("_", "-") for d in dists.get(mod, [])}
            if not provided & names: missing.setdefault(mod, set()).add(str(path.relative_to(ROOT)))
    assert not missing, "imported but not declared in settings.ini: " + "; ".join(f"{m} ({', '.join(sorted(f))})" for m, f in sorted(missing.items()))


def test_lock_pins_every_declared_requirement():
    "constraints.txt (the versions CI ran) pins each declared requirement, within its range."
    from packaging.requirements import Requirement
    lock = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line: k, v = line.split("=="); lock[_name(k)] = v
    for r in RUNTIME + DEV:
        req = Requirement(r)
        assert _name(r) in lock, f"{req.name} is required but constraints.txt does not pin it"
        assert req.specifier.contains(lock[_name(r)], prereleases=True), f"constraints.txt pins {req.name}=={lock[_name(r)]}, outside {req}"


@pytest.mark.skipif(not (ROOT / "constraints.txt").exists(), reason="no lock")
def test_installed_versions_are_the_locked_ones():
    "Where the lock was used (CI's fresh environment), what is installed is what it says."
    import os
    if os.environ.get("LLM_METHODS_LOCKED") != "1": pytest.skip("this environment was not installed with -c constraints.txt")
    bad = []
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line: continue
        k, v = line.split("==")
        try: got = md.version(k)
        except md.PackageNotFoundError: continue  # pinned for another platform or Python
        if got.split("+")[0] != v: bad.append(f"{k}: {got} installed, {v} locked")
    assert not bad, bad
