"`birdlab audit / quarantine / restore / split` as subprocesses on a copy of the real sample with planted problems."
import hashlib, shutil
from pathlib import Path
import pandas as pd
from PIL import Image
from conftest import run, SAMPLE

def _tree(tmp_path)->Path:
    root = tmp_path/'birds'
    shutil.copytree(SAMPLE, root)
    (root/'OSTRICH'/'cut.jpg').write_bytes((SAMPLE/'OSTRICH'/'2.jpg').read_bytes()[:5000])
    Image.open(SAMPLE/'BARN OWL'/'1.jpg').convert('CMYK').save(root/'BARN OWL'/'cmyk.jpg')
    shutil.copy(SAMPLE/'ALBATROSS'/'1.jpg', root/'LIMPKIN'/'albatross.jpg')   # same photo, two species
    Image.open(SAMPLE/'PEACOCK'/'3.jpg').resize((160,160)).save(root/'PEACOCK'/'small.jpg', quality=70)
    return root

def _state(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file() and '_quarantine' not in p.parts}

def test_audit_quarantine_restore_split(tmp_path):
    root = _tree(tmp_path)
    rep, csv = tmp_path/'report.html', tmp_path/'findings.csv'
    r = run('birdlab', 'audit', root, '--out', rep, '--csv', csv)
    assert r.returncode == 0, r.stderr[-3000:]
    f = pd.read_csv(csv, keep_default_na=False)
    by = f.groupby('issue').path.apply(lambda s: {Path(p).name for p in s})
    assert 'cut.jpg' in by['truncated'] and 'cmyk.jpg' in by['not_rgb']
    assert {'1.jpg','albatross.jpg'} <= by['cross_label'] and 'small.jpg' in by['near_duplicate']
    page = rep.read_text()
    assert 'truncated' in page and 'data:image/jpeg;base64,' in page

    # split: the duplicate groups never straddle splits, the broken file is left out
    man = tmp_path/'manifest.csv'
    r = run('birdlab', 'split', root, '--seed', '3', '--out', man)
    assert r.returncode == 0, r.stderr[-3000:]
    m = pd.read_csv(man)
    assert not m.path.str.endswith('cut.jpg').any()
    where = dict(zip(m.path.map(lambda p: str((man.parent/p).resolve())), m.split))
    for _,g in f[f.group>=0].groupby('group'): assert len({where[p] for p in g.path if p in where}) == 1
    assert m.groupby('split').label.nunique().min() == 30

    before = _state(root)
    r = run('birdlab', 'quarantine', root, '--findings', csv, '--issues', 'truncated,not_rgb')
    assert r.returncode == 0 and 'Moved 2 file(s)' in r.stdout, r.stdout + r.stderr[-2000:]
    assert not (root/'OSTRICH'/'cut.jpg').exists() and (root/'_quarantine'/'truncated'/'OSTRICH'/'cut.jpg').exists()
    r = run('birdlab', 'restore', root)
    assert r.returncode == 0 and 'Restored 2' in r.stdout
    assert _state(root) == before

def test_audit_with_model_and_review(tmp_path):
    "`birdlab audit --model` finds a photo filed under the wrong species and an off-topic one; `birdlab review` applies decisions."
    from sklearn.datasets import load_sample_images
    root = tmp_path/'birds'; shutil.copytree(SAMPLE, root)
    moved = {'ALBATROSS': 'PEACOCK', 'BLACK SWAN': 'OSTRICH', 'GREAT GRAY OWL': 'BALD EAGLE'}   # three photos filed under a wrong species
    for sp,wrong in moved.items(): shutil.move(root/sp/'1.jpg', root/wrong/f'{sp}.jpg')
    Image.fromarray(load_sample_images().images[0]).save(root/'LIMPKIN'/'temple.jpg')  # no bird at all
    rep, csv, review = tmp_path/'report.html', tmp_path/'findings.csv', tmp_path/'review.csv'
    r = run('birdlab', 'audit', root, '--out', rep, '--csv', csv, '--model', 'efficientnet_lite0', '--review', review)
    assert r.returncode == 0, r.stderr[-3000:]
    f = pd.read_csv(csv, keep_default_na=False)
    off, lab = f[f.issue=='off_topic'], f[f.issue=='label_issue'].set_index(f[f.issue=='label_issue'].path.map(lambda p: Path(p).name))
    assert 'temple.jpg' in set(off.path.map(lambda p: Path(p).name))
    for sp in moved: assert lab.loc[f'{sp}.jpg', 'suggested'] == sp   # found, with the right species suggested
    assert 'label_issue' in rep.read_text() and review.with_suffix('.json').exists()
    q = pd.read_csv(review, keep_default_na=False)
    q['decision'] = ['drop' if p.endswith('temple.jpg') else 'relabel' if p.endswith('ALBATROSS.jpg') else 'keep' for p in q.path]
    q.to_csv(review, index=False)
    r = run('birdlab', 'review', root, '--decisions', review, '--manifest', tmp_path/'manifest.csv')
    assert r.returncode == 0, r.stderr[-3000:]
    m = pd.read_csv(tmp_path/'manifest.csv')
    assert m.set_index(m.path.map(lambda p: Path(p).name)).loc['ALBATROSS.jpg', 'label'] == 'ALBATROSS'
    assert not m.path.str.endswith('temple.jpg').any() and (root/'_quarantine'/'review_drop'/'LIMPKIN'/'temple.jpg').exists()
    assert (root/'PEACOCK'/'ALBATROSS.jpg').exists()   # relabelled in the manifest; the file stays where it was
