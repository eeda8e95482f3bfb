"Export and serving as a user runs them: `birdlab export`, a real uvicorn server on 127.0.0.1, and the web page in headless Chromium."
import io, json, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, requests
from PIL import Image
from conftest import run, serving, SAMPLE, open_page

@pytest.fixture(scope='module')
def server(exported):
    with serving(exported[0], '--max-mb', '2') as (url, _): yield url

def test_export_files_cards_and_parity(exported):
    exp, r = exported
    from birdlab.inference import Predictor
    rep = json.loads((exp/'export.json').read_text())
    assert rep['onnx_fp32']['max_abs_diff'] < 1e-4 and rep['onnx_fp32']['top1_agreement'] == 1.0
    assert rep['onnx_fp32']['test_accuracy'] == rep['pytorch']['test_accuracy']
    assert (exp/'model_int8.onnx').stat().st_size <= 5*2**20
    assert 'onnx_int8' in r.stdout and 'max |dp|' in r.stdout
    for stem in ('model', 'model_int8'):
        card = json.loads((exp/f'{stem}.json').read_text())
        pred = Predictor(exp/f'{stem}.onnx')                      # the card round-trips: its hash, classes, preprocessing
        assert pred.classes == card['classes'] and len(card['classes']) == 30
        assert card['input']['size'] == 128 and card['temperature'] > 0 and 'test_accuracy' in card['metrics']
    r = run('birdlab', 'export', exp.parent/'nothing')
    assert r.returncode == 2 and 'No config.json' in r.stderr

def test_endpoints(server, exported):
    from birdlab.inference import Predictor
    jpg = (SAMPLE/'BALD EAGLE'/'2.jpg').read_bytes()
    assert requests.get(server+'/health').json()['status'] == 'ok'
    sp = requests.get(server+'/species').json()
    assert len(sp['species']) == 30 and 'BALD EAGLE' in sp['species']
    r = requests.post(server+'/predict', files={'file': ('2.jpg', jpg, 'image/jpeg')})
    assert r.status_code == 200, r.text
    j = r.json()
    local = Predictor(exported[0]).predict(jpg)                  # the server answers what the model file says
    assert j['model'] == local['model'] and j['top_k'] == local['top_k'] and j['unknown'] == local['unknown']
    assert abs(sum(j['probabilities'].values()) - 1) < 1e-3 and set(j['probabilities']) == set(sp['species'])
    assert j['species'] == ('unknown' if j['unknown'] else j['top_k'][0]['species'])
    r = requests.post(server+'/predict?k=2', data=jpg, headers={'content-type': 'image/jpeg'})
    assert r.ok and [t['species'] for t in r.json()['top_k']] == [t['species'] for t in j['top_k'][:2]]

def test_bad_inputs(server):
    jpg = (SAMPLE/'OSTRICH'/'1.jpg').read_bytes()
    bomb = io.BytesIO(); Image.new('L', (10_000, 10_000)).save(bomb, 'PNG')
    cases = [(dict(data=b''), 400, 'empty'),
             (dict(files={'photo': ('1.jpg', jpg, 'image/jpeg')}), 422, 'no_file'),
             (dict(files={'file': ('a.jpg', b'%PDF-1.4 not a photo', 'image/jpeg')}), 415, 'not_an_image'),
             (dict(files={'file': ('a.jpg', jpg[:2500], 'image/jpeg')}), 422, 'broken_image'),
             (dict(files={'file': ('big.jpg', b'\0'*(3*2**20), 'image/jpeg')}), 413, 'too_large'),
             (dict(data=iter([b'\0'*2**20]*3), headers={'content-type':'image/jpeg'}), 413, 'too_large'),  # chunked: no Content-Length
             (dict(files={'file': ('bomb.png', bomb.getvalue(), 'image/png')}), 413, 'too_many_pixels')]
    for kw,status,code in cases:
        r = requests.post(server+'/predict', timeout=30, **kw)
        assert (r.status_code, r.json()['code']) == (status, code), (code, r.status_code, r.text[:300])
        assert r.json()['detail']
    assert requests.post(server+'/predict', files={'file': ('1.jpg', jpg, 'image/jpeg')}).ok   # still serving
    assert requests.get(server+'/health').ok

def test_web_page_upload(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait
    fn = SAMPLE/'PEACOCK'/'3.jpg'
    expected = requests.post(server+'/predict', files={'file': (fn.name, fn.read_bytes(), 'image/jpeg')}).json()
    open_page(browser, server+'/')
    assert 'Which bird is this?' in browser.page_source
    browser.find_element('id', 'file').send_keys(str(fn))
    WebDriverWait(browser, 30).until(lambda d: d.find_element('id', 'species').text not in ('', '...'))
    shown = browser.find_element('id', 'species').text
    assert shown == ('unknown species' if expected['unknown'] else expected['species'])
    rows = browser.find_elements('css selector', '#bars .row')
    assert [r.get_attribute('data-species') for r in rows] == [t['species'] for t in expected['top_k']]
    assert browser.execute_script("return document.getElementById('preview').naturalWidth") > 0

def test_predict_cli_on_onnx(exported, demo_run, tmp_path):
    "`birdlab predict` takes an export folder or .onnx file too, and agrees with the run's PyTorch model."
    exp, _ = exported
    out, _ = demo_run
    imgs = [SAMPLE/'OSTRICH'/'1.jpg', SAMPLE/'PEACOCK'/'2.jpg', SAMPLE/'BALD EAGLE'/'3.jpg']
    r = run('birdlab', 'predict', out, *imgs, '--csv', tmp_path/'pt.csv')
    assert r.returncode == 0, r.stderr[-3000:]
    r = run('birdlab', 'predict', exp/'model.onnx', *imgs, '--csv', tmp_path/'onnx.csv')
    assert r.returncode == 0, r.stderr[-3000:]
    pt, ox = (pd.read_csv(tmp_path/f) for f in ('pt.csv', 'onnx.csv'))
    assert len(ox) == 15 and (ox.species == pt.species).all() and (ox.known == pt.known).all()
    assert np.abs(ox.probability - pt.probability).max() < 1e-3     # fp32 ONNX, the same calibration
    r = run('birdlab', 'predict', exp, imgs[0], '--k', '3')            # the folder: int8 model preferred
    assert r.returncode == 0 and 'model_int8' not in r.stderr and r.stdout.count('\n  ') == 3, r.stdout + r.stderr[-2000:]
