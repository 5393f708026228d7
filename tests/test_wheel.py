"Install the package from a freshly built wheel into a new virtual environment and use the console script from there."
import subprocess, sys, os, venv, pathlib, pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    whl, = (tmp / "dist").glob("llm_methods-*.whl")
    # the dependencies (torch, transformers, ...) come from this interpreter's site-packages: the test is about the wheel
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(whl)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return tmp / "venv" / "bin"

def test_wheel_installs_package_and_data(wheel_env):
    code = "import llm_methods, pathlib; print(pathlib.Path(llm_methods.__file__).parent)"
    r = subprocess.run([str(wheel_env / "python"), "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    pkg = pathlib.Path(r.stdout.strip())
    assert "site-packages" in str(pkg), pkg  # not the source tree
    assert (pkg / "_modidx.py").exists()

def test_wheel_console_script(wheel_env):
    exe = wheel_env / "llm_methods"
    assert exe.exists()
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0 and "sft" in r.stdout, r.stderr
    r = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0 and "--config" in r.stdout, r.stderr

def test_wheel_runs_base_stage(wheel_env, tmp_path):
    "The installed command runs a real stage: score the tiny base (built on first use, cached in LLM_METHODS_HOME)."
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu"}
    env.setdefault("LLM_METHODS_HOME", str(ROOT / ".cache" / "llm_methods"))
    r = subprocess.run([str(wheel_env / "llm_methods"), "base"], capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "base: exact match" in r.stdout, r.stdout
