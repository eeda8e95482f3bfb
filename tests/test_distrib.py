"`birdlab train --gpus N`: data-parallel training through Accelerate, tested with 2 CPU processes (gloo)."
import json
import pandas as pd
from conftest import run, SAMPLE

def _files(d):
    "Files of a run folder, relative; without what later commands add (`export/`, `eval-*/`), which other tests do to the demo run."
    return sorted(str(p.relative_to(d)) for p in d.rglob('*') if p.is_file() and not p.relative_to(d).parts[0].startswith(('export', 'eval-')))

def test_two_processes_write_what_one_writes(demo_run, tmp_path):
    "Two CPU processes train the demo's recipe; the run folder matches the one-process demo run's, and the model has learnt."
    one, r1 = demo_run
    assert r1.returncode == 0, r1.stderr[-3000:]
    out = tmp_path/'ddp'
    r = run('birdlab', 'train', '--data', SAMPLE, '--epochs', '2', '--size', '128', '--bs', '16', '--lr', '8e-3',
            '--gpus', '2', '--cpu', '--out', out, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert '2 CPU processes, global batch 16 (8 per process)' in r.stdout
    assert r.stdout.count('Test accuracy') == 1              # process 0 reports; the other is quiet
    assert _files(out) == _files(one)
    assert (out/'manifest.csv').read_bytes() == (one/'manifest.csv').read_bytes()   # the same split
    c1, c2 = (json.loads((d/'config.json').read_text()) for d in (one, out))
    assert (c1['processes'], c2['processes']) == (1, 2)
    for k in ('arch', 'vocab', 'n_images', 'bs', 'lr', 'epochs', 'size', 'stats'): assert c2[k] == c1[k], k
    h1, h2 = pd.read_csv(one/'history.csv'), pd.read_csv(out/'history.csv')
    assert list(h2.columns) == list(h1.columns) and len(h2) == len(h1) == 3   # 1 frozen + 2 epochs, logged once
    assert h2.valid_loss.iloc[-1] < h2.valid_loss.iloc[0]
    m = json.loads((out/'metrics.json').read_text())
    assert m['n_test'] == 30 and m['test_accuracy'] > 0.2, m   # chance is 1/30

def test_gpus_errors(tmp_path):
    r = run('birdlab', 'train', '--data', SAMPLE, '--gpus', '64', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'add --cpu' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'r').exists()                       # nothing created before the check
    r = run('birdlab', 'train', '--data', SAMPLE, '--gpus', '2', '--cpu', '--bs', '15', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'multiple of 2' in r.stderr, r.stderr[-2000:]
    r = run('birdlab', 'train', '--data', SAMPLE, '--gpus', '3', '--cpu', '--recipe', 'fast', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'bs=16 does not split evenly over 3' in r.stderr, r.stderr[-2000:]   # the recipe's batch
    r = run('birdlab', 'train', '--data', SAMPLE, '--gpus', '2', '--cpu', '--find-lr', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'single process' in r.stderr, r.stderr[-2000:]
    assert not (tmp_path/'r').exists()                       # refused before the run folder is made
    r = run('birdlab', 'train', '--data', tmp_path/'nope', '--gpus', '2', '--cpu')
    assert r.returncode == 2 and 'does not exist' in r.stderr, r.stderr[-2000:]
