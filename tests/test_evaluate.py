"`birdlab evaluate` as a user runs it, and its report opened in a real browser."
import json
from pathlib import Path
import pandas as pd
from conftest import run, SAMPLE, open_page

SECTIONS = ['summary','calibration','needs-data','per-class','confusion','most-confused','top-losses','curves']

def test_train_writes_calibration_and_report(demo_run):
    out, r = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    cal = json.loads((out/'calibration.json').read_text())
    assert cal['valid_nll_after'] <= cal['valid_nll_before'] and 0 < cal['temperature'] < 20 and 0 <= cal['threshold'] <= 1
    m = json.loads((out/'metrics.json').read_text())
    for k in ('test_balanced_accuracy','test_macro_f1','test_nll','test_ece','test_ece_calibrated','test_coverage'): assert k in m, k
    assert 'Calibration: temperature' in r.stdout
    html = (out/'report.html').read_text()
    assert all(f'id="{s}"' in html for s in SECTIONS)

def test_evaluate_cli_on_new_test_data(demo_run, tmp_path):
    out, _ = demo_run
    findings = tmp_path/'findings.csv'   # audit findings for two files: they must show up beside their mistakes, if mistaken
    pd.DataFrame([dict(path=str(SAMPLE/'OSTRICH'/'1.jpg'), label='OSTRICH', issue='blurry')]).to_csv(findings, index=False)
    r = run('birdlab', 'evaluate', out, '--test', SAMPLE, '--findings', findings, '--out', tmp_path/'ev')
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path/'ev'/'metrics.json').read_text())
    assert m['n_test'] == 150 and m['n_classes'] == 30
    pc = pd.read_csv(tmp_path/'ev'/'per_class.csv')
    assert pc.support.sum() == 150 and len(pc) == 30
    assert abs(pc.correct.sum()/150 - m['test_accuracy']) < 1e-3
    assert 'Report ->' in r.stdout and f"{m['test_accuracy']:.1%}" in r.stdout
    # the run folder's own results are untouched, and a second evaluation never overwrites the first
    r2 = run('birdlab', 'evaluate', out, '--out', tmp_path/'ev')
    assert r2.returncode == 2 and 'never overwrites' in r2.stderr

def test_evaluate_errors(demo_run, tmp_path):
    out, _ = demo_run
    r = run('birdlab', 'evaluate', tmp_path/'nothing')
    assert r.returncode == 2 and 'No config.json' in r.stderr and 'Traceback' not in r.stderr
    odd = tmp_path/'odd'/'NOT A SPECIES OF THE MODEL'; odd.mkdir(parents=True)
    odd.joinpath('1.jpg').write_bytes((SAMPLE/'OSTRICH'/'1.jpg').read_bytes())
    r = run('birdlab', 'evaluate', out, '--test', odd.parent)
    assert r.returncode == 2 and 'NOT A SPECIES OF THE MODEL' in r.stderr

def test_report_opens_in_browser(demo_run, browser, tmp_path):
    out, _ = demo_run
    open_page(browser, (out/'report.html').as_uri())
    for s in SECTIONS:
        sec = browser.find_element('id', s)
        assert sec.is_displayed() and sec.find_element('tag name', 'h2').text, s
    imgs = browser.find_elements('css selector', 'img')
    assert len(imgs) >= 4
    assert all(browser.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', i) for i in imgs)
    assert browser.find_element('css selector', '#top-losses img[alt="top losses"]')   # Grad-CAM grid of the mistakes
    rows = browser.find_elements('css selector', '#per-class tbody tr')
    assert len(rows) == 30

def test_evaluate_with_tta(demo_run, tmp_path):
    "`birdlab evaluate --tta` predicts with test-time augmentation and says so in metrics.json and the report."
    out, _ = demo_run
    r = run('birdlab', 'evaluate', out, '--tta', '--out', tmp_path/'tta')
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path/'tta'/'metrics.json').read_text())
    assert m['tta'] is True and m['n_test'] == 30 and 0 < m['test_accuracy'] <= 1
    assert '(TTA)' in (tmp_path/'tta'/'report.html').read_text()
