"`birdlab push` and `birdlab pull` against a Hub on 127.0.0.1 (`birdlab.testing.FakeHub`), as a user runs them."
import json, os, sys, hashlib
from pathlib import Path
import pandas as pd, pytest, torch
from safetensors.torch import load_file
from conftest import run
from birdlab.testing import FakeHub

def is_pickle(b:bytes)->bool:
    "A pickle (protocol 2 on), or a zip holding one (`torch.save`'s format)."
    if b[:1]==b'\x80' and b[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'): return True
    if b[:4]==b'PK\x03\x04':
        import io, zipfile
        with zipfile.ZipFile(io.BytesIO(b)) as z: return any(n.endswith('.pkl') for n in z.namelist())
    return False

def test_is_pickle(demo_run):
    out, _ = demo_run
    assert is_pickle((out/'model.pth').read_bytes()) and is_pickle(__import__('pickle').dumps({'a':1}))
    assert not is_pickle(b'{"a": 1}') and not is_pickle((out/'config.json').read_bytes())

@pytest.fixture(scope='module')
def fakehub():
    with FakeHub() as h: yield h

@pytest.fixture(scope='module')
def hub(fakehub, tmp_path_factory):
    "The environment that points `huggingface_hub` (in the CLI's process) at the fake Hub."
    return {**os.environ, **fakehub.env(tmp_path_factory.mktemp('hf_home'))}

@pytest.fixture(scope='module')
def pushed(hub, demo_run, exported):
    out, _ = demo_run; exp, _ = exported
    r = run('birdlab', 'push', out, '--repo', 'birders/sample30', '--export', exp, '--license', 'cc0-1.0',
            '--data-license', 'Public domain photos', env=hub, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "hf-hub:birders/sample30" in r.stdout
    return 'birders/sample30'

def test_push_uploads_timm_format_and_no_pickle(pushed, exported, fakehub):
    files = fakehub.repos[pushed]['files']
    exp, _ = exported
    assert {'README.md', 'config.json', 'model.safetensors', 'export/model.onnx', 'export/model.json', 'export/model_int8.onnx',
            'export/model.ort', 'export/model_int8.ort', 'export/export.json', 'export/model.pte', 'export/model.pte.json',
            'export/model.mlpackage.json', 'export/model.mlpackage/Manifest.json', 'export/model.tflite', 'export/model_int8.tflite',
            'export/model.tflite.json'} <= set(files)
    assert not [f for f,b in files.items() if is_pickle(b)], [f for f,b in files.items() if is_pickle(b)]
    assert files['export/model.onnx'] == (exp/'model.onnx').read_bytes()
    card = files['README.md'].decode()
    assert card.startswith('---\nlibrary_name: timm\nlicense: cc0-1.0\n')
    assert 'Public domain photos' in card and 'OSTRICH' in card and 'export/model_int8.ort' in card and 'export/model_int8.tflite' in card

def test_pull_round_trip(pushed, hub, demo_run, exported, tmp_path):
    out, _ = demo_run; exp, _ = exported
    dest = tmp_path/'pulled'
    r = run('birdlab', 'pull', pushed, '--out', dest, env=hub)
    assert r.returncode == 0, r.stderr[-3000:]
    sd, ref = load_file(dest/'model.safetensors'), torch.load(out/'model.pth', weights_only=True)
    assert set(sd) == set(ref) and all(torch.equal(sd[k], ref[k]) for k in ref)   # identical weights
    cfg = json.loads((dest/'config.json').read_text())
    assert cfg['label_names'] == json.loads((out/'config.json').read_text())['vocab']
    from birdlab.export import digest   # the Core ML package, a folder, comes back whole
    assert digest(dest/'export'/'model.mlpackage') == json.loads((exp/'model.mlpackage.json').read_text())['sha256']
    assert not (dest/'.cache').exists() and not list(tmp_path.glob('.pulled.*'))   # no download bookkeeping or leftovers
    # the pulled export serves the same answers as the original export, on real photos
    from birdlab.inference import Predictor
    man = pd.read_csv(out/'manifest.csv'); photos = man[man.split=='test'].path[:6]
    a, b = Predictor(exp/'model.onnx'), Predictor(dest/'export'/'model.onnx')
    for f in photos: assert a.predict(Path(f).read_bytes())['probabilities'] == b.predict(Path(f).read_bytes())['probabilities']
    r = run('birdlab', 'pull', pushed, '--out', dest, env=hub)   # never into a folder that holds files
    assert r.returncode == 2 and 'not empty' in r.stderr

def test_timm_loads_the_pushed_repo(pushed, hub, demo_run, exported, tmp_path):
    "timm alone, with its own transform from the pushed config, names the test photos as birdlab's export does."
    out, _ = demo_run; exp, _ = exported
    man = pd.read_csv(out/'manifest.csv'); photos = man[man.split=='test'].path.tolist()
    code = ("import json, sys, timm, torch\nfrom PIL import Image\n"
            f"m = timm.create_model('hf-hub:{pushed}', pretrained=True).eval()\n"
            "tf = timm.data.create_transform(**timm.data.resolve_data_config({}, model=m))\n"
            "names = m.pretrained_cfg['label_names']\n"
            "with torch.no_grad(): print(json.dumps([names[m(tf(Image.open(f).convert('RGB'))[None]).argmax()] for f in sys.argv[1:]]))")
    r = run(sys.executable, '-c', code, *photos, env=hub, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    timm_says = json.loads(r.stdout.strip().splitlines()[-1])
    from birdlab.inference import Predictor
    p = Predictor(exp/'model.onnx')
    ours = [max(d:=p.predict(Path(f).read_bytes())['probabilities'], key=d.get) for f in photos]
    agree = sum(a==b for a,b in zip(timm_says, ours))/len(photos)
    assert agree >= 0.8, (agree, timm_says, ours)

def test_pull_refuses_a_pickle_only_repo(hub, fakehub, tmp_path):
    fakehub.repos['someone/pickled'] = dict(sha='1'*40, private=False, files={
        'config.json': json.dumps({'architecture':'efficientnet_lite0', 'num_classes':2, 'label_names':['a', 'b']}).encode(),
        'pytorch_model.bin': b'not a real pickle, and never read'})
    r = run('birdlab', 'pull', 'someone/pickled', '--out', tmp_path/'p', env=hub)
    assert r.returncode == 2 and 'safetensors' in r.stderr and 'pickle' in r.stderr, r.stderr
    assert not (tmp_path/'p').exists() and not list(tmp_path.rglob('*.bin'))

def test_hub_errors_are_messages(hub, demo_run, tmp_path):
    r = run('birdlab', 'pull', 'nobody/nothing', '--out', tmp_path/'x', env=hub)
    assert r.returncode == 2 and 'no such model repo' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'x').exists()
    out, _ = demo_run
    r = run('birdlab', 'push', out, '--repo', 'no-namespace', env=hub)
    assert r.returncode == 2 and "'user/name'" in r.stderr, r.stderr

def test_card_metadata_is_checked_by_the_hub(hub, fakehub, demo_run):
    out, _ = demo_run
    r = run('birdlab', 'push', out, '--repo', 'birders/badlicence', '--license', 'free-as-in-birds', '--no-export', env=hub)
    assert r.returncode == 2 and 'free-as-in-birds' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not fakehub.repos.get('birders/badlicence', {}).get('files')
