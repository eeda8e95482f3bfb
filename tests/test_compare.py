"`birdlab compare`, `birdlab ensemble` and `birdlab distill` as a user runs them, on the bundled sample photos."
import json
from pathlib import Path
import pandas as pd, pytest
from conftest import run, SAMPLE

RECIPE = ['--epochs', '2', '--size', '96', '--bs', '16', '--lr', '8e-3']

@pytest.fixture(scope='module')
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp('cmp')/'cmp'
    r = run('birdlab', 'compare', '--data', SAMPLE, '--archs', 'efficientnet_lite0,efficientnet_lite1', '--out', out, *RECIPE)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r

def test_compare_table(compared):
    out, r = compared
    df = pd.read_csv(out/'compare.csv')
    assert df.arch.tolist() == ['efficientnet_lite0', 'efficientnet_lite1']
    assert df.drop(columns=['gpu_images_per_s', 'int8_mb']).notna().all().all(), df   # filled (GPU only with CUDA; int8_mb empty if refused)
    assert (df.test_accuracy > 0.2).all() and ((df.int8_mb < df.weights_mb) | df.int8_mb.isna()).all() and df.params_m.is_monotonic_increasing
    assert (out/'compare.png').read_bytes()[:4] == b'\x89PNG'
    lead = 'Smallest within 1 point of the best on validation: '
    assert lead in r.stdout
    best = df.valid_accuracy.idxmax()   # each arch against the most accurate on validation, on the same test photos, with its interval
    assert df.loc[best, 'test_vs_best'] == 0 and ((df.test_vs_best_lo <= df.test_vs_best) & (df.test_vs_best <= df.test_vs_best_hi)).all(), df
    pick = df.set_index('arch').loc[r.stdout.split(lead)[1].split()[0]]
    assert pick.valid_accuracy >= df.valid_accuracy.max() - 0.01, df   # chosen on validation
    assert ('On test against the best on validation:' in r.stdout) == (pick.test_vs_best < 0), r.stdout[-1500:]
    # one split for all: the two runs' manifests are identical
    m0, m1 = (pd.read_csv(out/a/'manifest.csv') for a in df.arch)
    assert m0.equals(m1)

def test_ensemble_and_distill(compared, tmp_path):
    cmp, _ = compared
    members = [cmp/'efficientnet_lite0', cmp/'efficientnet_lite1']
    r = run('birdlab', 'ensemble', *members, '--rule', 'nll', '--out', tmp_path/'ens')
    assert r.returncode == 0, r.stderr[-3000:]
    rep = pd.read_csv(tmp_path/'ens'/'members.csv')
    assert abs(rep.weight[:2].sum() - 1) < 1e-3 and (rep.weight[:2] >= 0).all()
    assert rep.valid_nll.iloc[-1] <= rep.valid_nll[:2].min() + 1e-4, rep     # fitted weights never worse than the best member
    m = json.loads((tmp_path/'ens'/'metrics.json').read_text())
    assert m['n_test'] == 30 and f"{m['test_accuracy']:.1%}" in r.stdout
    ens = json.loads((tmp_path/'ens'/'ensemble.json').read_text())
    assert len(ens['members']) == 2 and ens['cal']['temperature'] > 0

    r = run('birdlab', 'distill', '--teacher', tmp_path/'ens'/'ensemble.json', '--out', tmp_path/'student', *RECIPE)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((tmp_path/'student'/'metrics.json').read_text())
    assert s['test_accuracy'] > 0.2, s                                           # chance: 1/30
    assert json.loads((tmp_path/'student'/'config.json').read_text())['arch'] == 'efficientnet_lite0'
    assert pd.read_csv(tmp_path/'student'/'manifest.csv').equals(pd.read_csv(members[0]/'manifest.csv'))  # the teacher's split
    assert (tmp_path/'student'/'model.pkl').stat().st_size < 30e6                # no teacher inside

def test_bad_inputs(compared, tmp_path):
    cmp, _ = compared
    r = run('birdlab', 'ensemble', cmp/'efficientnet_lite0', tmp_path/'nope', '--out', tmp_path/'e1')
    assert r.returncode == 2 and 'nope' in r.stderr and 'Traceback' not in r.stderr
    r = run('birdlab', 'ensemble', cmp/'efficientnet_lite0', '--rule', 'median', '--out', tmp_path/'e2')
    assert r.returncode == 2 and 'median' in r.stderr
    r = run('birdlab', 'distill', '--teacher', tmp_path/'missing', '--out', tmp_path/'s')
    assert r.returncode == 2 and 'missing' in r.stderr and 'Traceback' not in r.stderr
