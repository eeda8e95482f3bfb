import shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT/'data'/'birds30'

def run(*args, timeout=600, **kw):
    "Run a command, returning the CompletedProcess (text output)."
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)

@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    "One real `birdlab demo` (short: 2 epochs at 128 px) shared by the CLI tests."
    out = tmp_path_factory.mktemp('cli')/'demo'
    r = run('birdlab', 'demo', '--out', out, '--epochs', '2', '--size', '128', cwd=tmp_path_factory.getbasetemp())
    return out, r
