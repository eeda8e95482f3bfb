"Hostile and broken inputs, as an attacker or a careless user brings them: received run folders, crafted CSVs and cards, slow clients, interrupted runs."
import json, os, pickle, re, shutil, signal, socket, subprocess, time
from pathlib import Path
import pandas as pd, pytest, requests
from conftest import run, serving, SAMPLE, open_page

PHOTOS = [SAMPLE/'OSTRICH'/'1.jpg', SAMPLE/'PEACOCK'/'2.jpg']

class _Evil:
    "A pickle that runs a command when it is loaded."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f"touch '{self.marker}'",))

def test_received_run_folder_runs_no_code(demo_run, tmp_path):
    "predict, evaluate and export of a run folder with a booby-trapped model.pkl work, from model.pth, and never open the pickle."
    out, _ = demo_run
    evil, marker = tmp_path/'received', tmp_path/'pwned'
    shutil.copytree(out, evil, ignore=shutil.ignore_patterns('eval-*', 'export'))
    (evil/'model.pkl').write_bytes(pickle.dumps(_Evil(marker)))
    for args in (['predict', evil, *PHOTOS], ['evaluate', evil, '--out', tmp_path/'ev'], ['export', evil, '--out', tmp_path/'exp', '--no-int8']):
        r = run('birdlab', *args)
        assert r.returncode == 0, (args[0], r.stderr[-2000:])
        assert not marker.exists(), args[0]
    r = run('birdlab', 'predict', evil, PHOTOS[0], '--trust-pickle')   # the documented opt-in does unpickle it (and so runs it)
    assert marker.exists() and r.returncode == 2 and 'not a fastai export' in r.stderr

def test_predict_k_is_checked(demo_run):
    out, _ = demo_run
    for k in ('0', '-3'):
        r = run('birdlab', 'predict', out, PHOTOS[0], '--k', k)
        assert r.returncode == 2 and f'k={k}' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-1500:]
    r = run('birdlab', 'predict', out, PHOTOS[0], '--k', '100')   # more than the model knows: all 30
    assert r.returncode == 0 and len(re.findall(r'^  \d+\. ', r.stdout, re.M)) == 30, r.stdout[-500:]

def test_model_card_must_fit_the_model(exported, tmp_path):
    exp, _ = exported
    card = json.loads((exp/'model.json').read_text())
    for name,change,msg in [('few', dict(classes=card['classes'][:3]), 'it lists 3 classes but the model has 30 outputs'),
                            ('nocls', dict(classes=None), "'classes' must list"),
                            ('temp', dict(temperature=-1), 'temperature')]:
        d = tmp_path/name; d.mkdir()
        shutil.copy(exp/'model.onnx', d/'model.onnx')
        (d/'model.json').write_text(json.dumps({**card, **change}))
        for args in (['serve', d, '--port', '1'], ['predict', d, PHOTOS[0]]):
            r = run('birdlab', *args, timeout=120)
            assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, (name, args[0], r.stderr[-1500:])

def test_service_runs_without_torch(exported):
    "`birdlab serve` loads no PyTorch: its memory is the service's, not a deep-learning stack's."
    with serving(exported[0]) as (url, p):
        assert requests.post(url+'/predict', files={'file': ('1.jpg', PHOTOS[0].read_bytes(), 'image/jpeg')}).ok
        maps = Path(f'/proc/{p.pid}/maps').read_text()
        rss = int(next(l for l in Path(f'/proc/{p.pid}/status').read_text().splitlines() if l.startswith('VmRSS')).split()[1])/1024
    assert 'libtorch' not in maps and 'fastai' not in maps
    assert rss < 250, f'{rss:.0f} MB resident'

def test_slow_client_is_cut_off(exported):
    "A client that sends its body a byte at a time gets a 408 after --body-timeout, and the server keeps serving."
    with serving(exported[0], '--body-timeout', '2') as (url, _):
        port = int(url.rsplit(':', 1)[1])
        with socket.create_connection(('127.0.0.1', port), timeout=15) as s:
            s.sendall(b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n')
            t0, answer = time.time(), b''
            while time.time()-t0 < 12 and b'\r\n\r\n' not in answer:
                try: s.sendall(b'\xff')
                except OSError: pass
                s.settimeout(0.5)
                try: answer += s.recv(4096)
                except socket.timeout: pass
        assert answer.startswith(b'HTTP/1.1 408'), answer[:200]
        assert time.time()-t0 < 8
        assert requests.post(url+'/predict', files={'file': ('1.jpg', PHOTOS[0].read_bytes(), 'image/jpeg')}).ok

def test_web_page_shows_markup_as_text(exported, tmp_path, browser):
    "A model file name and species names holding markup are shown as text on the page, and run nothing."
    from selenium.webdriver.support.ui import WebDriverWait
    exp, _ = exported
    name = 'm<img src=x onerror="document.title=`pwned`">'
    card = json.loads((exp/'model.json').read_text())
    card['classes'] = [f'<img src=x onerror="document.title=`pwned`">{c}' if i%2 else f'<b>{c}</b> & "co"' for i,c in enumerate(card['classes'])]
    shutil.copy(exp/'model.onnx', tmp_path/f'{name}.onnx')
    (tmp_path/f'{name}.json').write_text(json.dumps(card))
    with serving(tmp_path/f'{name}.onnx') as (url, _):
        open_page(browser, url+'/')
        assert browser.title == 'birdlab' and name in browser.find_element('id', 'model').text
        browser.find_element('id', 'file').send_keys(str(SAMPLE/'PEACOCK'/'3.jpg'))
        WebDriverWait(browser, 30).until(lambda d: len(d.find_elements('css selector', '#bars .row')) == 5)
        shown = [e.text for e in browser.find_elements('css selector', '#bars .name')]
        assert all(s in card['classes'] for s in shown), shown
        assert browser.execute_script("return document.querySelectorAll('body img:not(#preview), #bars b').length") == 0
        assert browser.title == 'birdlab'

def test_two_exports_of_one_run(demo_run, tmp_path):
    "Two `birdlab export` into one folder at once: exactly one writes it, the other stops cleanly."
    out, _ = demo_run
    ps = [subprocess.Popen(['birdlab', 'export', str(out), '--out', str(tmp_path/'exp'), '--no-int8'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
    res = [(p.wait(300), p.stderr.read()) for p in ps]
    assert sorted(rc for rc,_ in res) == [0, 2], res
    assert 'already holds files' in next(e for rc,e in res if rc == 2)
    assert json.loads((tmp_path/'exp'/'model.json').read_text())['classes']

def test_interrupted_training_resumes(tmp_path):
    "SIGTERM mid-run leaves a folder marked incomplete that refuses to load; `birdlab train --resume` finishes it."
    rundir = tmp_path/'run'
    p = subprocess.Popen(['birdlab', 'train', '--data', str(SAMPLE), '--epochs', '3', '--size', '64', '--bs', '16', '--out', str(rundir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prog = rundir/'progress.json'
    for _ in range(600):
        if prog.exists() and json.loads(prog.read_text())['phase'] == 'unfrozen': break
        assert p.poll() is None, p.stderr.read()[-2000:]
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    rc, err = p.wait(120), p.stderr.read()
    assert rc == 130 and f'--resume {rundir}' in err and 'Traceback' not in err, (rc, err[-2000:])
    assert json.loads((rundir/'config.json').read_text())['complete'] is False and not (rundir/'model.pth').exists()
    r = run('birdlab', 'predict', rundir, PHOTOS[0])
    assert r.returncode == 2 and 'interrupted' in r.stderr
    r = run('birdlab', 'train', '--data', SAMPLE, '--out', rundir)
    assert r.returncode == 2 and '--resume' in r.stderr
    r = run('birdlab', 'train', '--resume', rundir)
    assert r.returncode == 0 and 'Resuming' in r.stdout and 'Test accuracy' in r.stdout, r.stderr[-2000:]
    h = pd.read_csv(rundir/'history.csv')
    assert h.epoch.iloc[0] == 0 and set(h.epoch.iloc[1:]) == {0, 1, 2} and h.epoch.iloc[-1] == 2, h
    assert json.loads((rundir/'config.json').read_text())['complete'] is True
    assert run('birdlab', 'predict', rundir, PHOTOS[0]).returncode == 0
