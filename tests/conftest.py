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

@pytest.fixture(scope='session')
def browser():
    "One headless Chromium (Debian's chromium and chromedriver) for the tests that need a real browser."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for a in ('--headless=new','--no-sandbox','--disable-gpu','--disable-dev-shm-usage','--disable-background-networking',
              '--disable-component-update','--disable-sync','--no-first-run'): opts.add_argument(a)
    opts.binary_location = shutil.which('chromium') or shutil.which('google-chrome') or ''
    drv = webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=opts)
    yield drv
    drv.quit()
