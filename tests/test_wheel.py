"Install the package from a freshly built wheel into a new virtual environment and use the console script from there."
import subprocess, sys, os, site, venv, pathlib, pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the venv must import the wheel's copy: no PYTHONPATH pointing at a source tree
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    whl, = (tmp / "dist").glob("llm_methods-*.whl")
    # the dependencies (torch, transformers, ...) come from this interpreter's site-packages: the test is about the wheel.
    # Not `system_site_packages=True`: inside a virtual environment (CI's, or a user's) that links the *base*
    # interpreter's site-packages, where torch is not. A .pth file lists this interpreter's own site-packages instead;
    # .pth files inside those folders (an editable install of the source tree) are not run, so the wheel is what imports.
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    r = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    (pathlib.Path(r.stdout.strip()) / "_parent_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --ignore-installed: an editable install of the source tree (as CI makes) must not satisfy the requirement
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(whl)], capture_output=True, text=True,
                       timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    return tmp / "venv" / "bin"

def test_wheel_installs_package_and_data(wheel_env):
    code = "import llm_methods, pathlib; print(pathlib.Path(llm_methods.__file__).parent)"
    r = subprocess.run([str(wheel_env / "python"), "-c", code], capture_output=True, text=True, cwd="/", timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    pkg = pathlib.Path(r.stdout.strip())
    assert "site-packages" in str(pkg), pkg  # not the source tree
    assert (pkg / "_modidx.py").exists()

def test_wheel_console_script(wheel_env):
    exe = wheel_env / "llm_methods"
    assert exe.exists()
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd="/", timeout=120, env=ENV)
    assert r.returncode == 0 and "sft" in r.stdout, r.stderr
    r = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, cwd="/", timeout=120, env=ENV)
    assert r.returncode == 0 and "--config" in r.stdout, r.stderr

def test_wheel_runs_the_main_job(wheel_env, tmp_path):
    "The installed command runs the main job's first stages from the wheel alone: the shipped tiny base (no training) and the k-shot curve."
    env = {**ENV, "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu", "LLM_METHODS_HOME": str(tmp_path / "home")}  # an empty cache
    out = tmp_path / "run"
    r = subprocess.run([str(wheel_env / "llm_methods"), "run", "--stages", "base,icl", "--icl-shots", "0,4", "--out", str(out)],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "base" / "log.txt").read_text()  # what the stage printed; the console has one line per stage
    assert "shipped with the package" in log and "site-packages" in log, log  # the wheel carries the base
    assert "[1/2] base" in r.stdout and "table " in r.stdout, r.stdout
    table = (out / "results.md").read_text()
    for row in ("base (plain style)", "icl-0shot", "icl-4shot"): assert row in table, table
    assert (out / "results.csv").exists() and (out / "results.json").exists() and (out / "results.png").exists()
