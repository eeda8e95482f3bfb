"The `birdlab` command as a user runs it: real subprocesses on the bundled sample photos."
import json, csv, sys
from pathlib import Path
import pandas as pd
from conftest import run, SAMPLE

def test_demo_writes_run_folder(demo_run):
    out, r = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Test accuracy' in r.stdout
    for f in ('model.pkl','model.pth','config.json','metrics.json','history.csv','manifest.csv',
              'per_class.csv','confusion.csv','confusion.png','curves.png','calibration.json','report.html','reliability.png'):
        assert (out/f).stat().st_size > 0, f
    m = json.loads((out/'metrics.json').read_text())
    assert m['n_test'] == 30 and m['n_classes'] == 30
    assert m['test_accuracy'] > 0.2, m            # chance is 1/30 = 0.033
    assert f"{m['test_accuracy']:.1%}" in r.stdout
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['arch'] == 'efficientnet_lite0' and cfg['size'] == 128 and cfg['epochs'] == 2
    assert cfg['weights_source'].startswith('offline')
    man = pd.read_csv(out/'manifest.csv')
    assert man.split.value_counts().to_dict() == {'train':90, 'valid':30, 'test':30}
    assert (out/'confusion.png').read_bytes()[:4] == b'\x89PNG'

def test_demo_never_overwrites(demo_run):
    out, _ = demo_run
    before = (out/'metrics.json').read_bytes()
    r = run('birdlab', 'demo', '--out', out, '--epochs', '1', '--size', '64')
    assert r.returncode == 2 and 'never overwrites' in r.stderr
    assert (out/'metrics.json').read_bytes() == before

def test_predict(demo_run, tmp_path):
    out, _ = demo_run
    imgs = [SAMPLE/'OSTRICH'/'1.jpg', SAMPLE/'PEACOCK'/'2.jpg']
    r = run('birdlab', 'predict', out, *imgs, '--csv', tmp_path/'preds.csv')
    assert r.returncode == 0, r.stderr[-3000:]
    df = pd.read_csv(tmp_path/'preds.csv')
    assert len(df) == 10 and df['rank'].tolist() == [1,2,3,4,5]*2
    vocab = json.loads((out/'config.json').read_text())['vocab']
    assert set(df.species) <= set(vocab)
    for img,g in df.groupby('image'):
        assert g.probability.is_monotonic_decreasing and g.probability.sum() <= 1.0001
        assert str(img) in r.stdout
    assert df.iloc[0].species in r.stdout

def test_predict_bad_inputs(demo_run, tmp_path):
    out, _ = demo_run
    bad = tmp_path/'cut.jpg'; bad.write_bytes((SAMPLE/'OSTRICH'/'1.jpg').read_bytes()[:2500])
    r = run('birdlab', 'predict', out, bad)
    assert r.returncode == 2 and 'cut.jpg' in r.stderr and 'Traceback' not in r.stderr
    r = run('birdlab', 'predict', out, tmp_path/'missing.jpg')
    assert r.returncode == 2 and 'missing.jpg' in r.stderr
    r = run('birdlab', 'predict', tmp_path/'no_run', SAMPLE/'OSTRICH'/'1.jpg')
    assert r.returncode == 2 and 'No model at' in r.stderr

def test_train_errors(tmp_path):
    r = run('birdlab', 'train', '--data', tmp_path/'nope')
    assert r.returncode == 2 and 'does not exist' in r.stderr
    (tmp_path/'birds'/'EMPTY').mkdir(parents=True)
    r = run('birdlab', 'train', '--data', tmp_path/'birds')
    assert r.returncode == 2 and 'EMPTY' in r.stderr
    r = run('birdlab', 'train', '--data', SAMPLE, '--arch', 'efficientnet_lite7', '--out', tmp_path/'r')
    assert r.returncode == 2 and 'Unknown architecture' in r.stderr
    assert not any((tmp_path/'r').iterdir())   # the folder is given back, free for the next try
    r = run('birdlab', 'train', '--data', SAMPLE, '--recipe', 'quick', '--out', tmp_path/'r2')
    assert r.returncode == 2 and 'choose one of default, fast.' in r.stderr
    r = run('birdlab', 'train', '--data', SAMPLE, '--recipe', 'best', '--out', tmp_path/'r2')
    assert r.returncode == 2 and "recipe='best' was dropped" in r.stderr and '--epochs 16 --lr 4e-3' in r.stderr   # says what gives its schedule
    r = run('birdlab', 'train', '--data', SAMPLE, '--progressive', '224,128', '--out', tmp_path/'r2')
    assert r.returncode == 2 and 'increasing order' in r.stderr
    r = run('birdlab', 'train', '--data', SAMPLE, '--ema', '1.5', '--out', tmp_path/'r2')
    assert r.returncode == 2 and 'ema=1.5: give a decay between 0 and 1' in r.stderr
    assert not (tmp_path/'r2').exists()   # settings are checked before the run folder is claimed

def test_train_on_csv_manifest(tmp_path):
    "`birdlab train` on a Kaggle-style CSV with its own split column: 1+2 epochs, progressive 48 then 64 px, an average of the weights, a closer validation view."
    rows = [dict(filepaths=str(p.relative_to(SAMPLE)), labels=p.parent.name,
                 **{'data set': {'1':'train','2':'train','3':'train','4':'valid'}.get(p.stem, 'test')})
            for p in sorted(SAMPLE.glob('*/*.jpg'))][:50]
    csvf = tmp_path/'birds.csv'
    pd.DataFrame([{**r, 'filepaths': str(SAMPLE/r['filepaths'])} for r in rows]).to_csv(csvf, index=False)
    r = run('birdlab', 'train', '--data', csvf, '--epochs', '2', '--freeze-epochs', '1', '--progressive', '48,64', '--ema', '0.9', '--crop-pct', '0.9', '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path/'run'/'metrics.json').read_text())
    assert m['n_test'] == 10 and m['n_classes'] == 10   # the CSV's own split was kept
    cfg = json.loads((tmp_path/'run'/'config.json').read_text())
    assert (cfg['recipe'], cfg['progressive'], cfg['size'], cfg['presize'], cfg['ema'], cfg['crop_pct']) == ('default', [48, 64], 64, 73, 0.9, 0.9)   # 48 px, then 64 px
    assert m['tta'] == (m['valid_accuracy_tta'] > m['valid_accuracy'])   # TTA measured on validation

def test_export_to_mobile_formats(exported):
    "`birdlab export --to onnx,ort` writes the ONNX Runtime Mobile files with their cards, and prints each file's checks."
    exp, r = exported
    for f in ('model.ort', 'model_int8.ort', 'model.ort.json', 'model_int8.ort.json', 'model.required_operators.config'): assert (exp/f).is_file(), f
    import onnxruntime as ort, json
    from birdlab.inference import sha256
    for f in ('model.onnx', 'model_int8.onnx', 'model.ort', 'model_int8.ort'):   # every card names its own file's hash
        card = exp/(f.replace('.onnx', '.json') if f.endswith('.onnx') else f+'.json')
        assert json.loads(card.read_text())['sha256'] == sha256(exp/f), f
    meta = ort.InferenceSession(str(exp/'model.ort'), providers=['CPUExecutionProvider']).get_modelmeta().custom_metadata_map
    assert json.loads(meta['classes']) == json.loads((exp/'model.json').read_text())['classes']
    rows = {l.split()[0] for l in r.stdout.splitlines() if l.strip()}
    assert {'onnx_fp32', 'onnx_int8', 'ort_fp32', 'ort_int8', 'executorch_fp32', 'coreml'} <= rows, r.stdout
    from birdlab.export import digest
    for f in ('model.pte', 'model.mlpackage'): assert json.loads((exp/f'{f}.json').read_text())['sha256'] == digest(exp/f), f
    rep = json.loads((exp/'export.json').read_text())
    assert rep['executorch_fp32']['max_abs_diff'] < 1e-4 and rep['coreml']['class_labels'] is True, rep

def test_tflite_file_answers_like_the_onnx_service(exported, demo_run):
    "The .tflite files, fed as an Android app would (the photo preprocessed from the metadata inside the file, channels last), give the ONNX service's answers."
    import json, numpy as np, pandas as pd
    from ai_edge_litert.interpreter import Interpreter
    from birdlab.export import tflite_metadata
    from birdlab.inference import Predictor, load_image, preprocess, sha256, softmax
    exp, r = exported; out, _ = demo_run
    assert {'tflite_fp32', 'tflite_int8'} <= {l.split()[0] for l in r.stdout.splitlines() if l.strip()}, r.stdout
    man = pd.read_csv(out/'manifest.csv'); photos = list(man[man.split=='test'].path[:8])
    onnx = Predictor(exp/'model.onnx').probs(photos)
    for f in ('model.tflite', 'model_int8.tflite'):
        assert json.loads((exp/f'{f}.json').read_text())['sha256'] == sha256(exp/f), f
        meta = tflite_metadata(exp/f)                      # everything an app needs is in the file
        assert meta['input']['layout'] == 'NHWC' and meta['classes'] == json.loads((exp/'model.json').read_text())['classes']
        it = Interpreter(str(exp/f)); it.allocate_tensors()
        i, o = it.get_input_details()[0]['index'], it.get_output_details()[0]['index']
        def probs(p):
            it.set_tensor(i, preprocess(load_image(p), meta['input']).transpose(1, 2, 0)[None].copy()); it.invoke()
            return softmax(it.get_tensor(o).astype(np.float64)/meta['temperature'])[0]
        p = np.stack([probs(x) for x in photos])
        if f == 'model.tflite': assert np.abs(p - onnx).max() < 1e-4, np.abs(p - onnx).max()
        assert (p.argmax(1) == onnx.argmax(1)).mean() >= 0.75, (f, p.argmax(1), onnx.argmax(1))

def test_export_names_the_missing_extra(demo_run, tmp_path):
    "A phone format whose converter is not installed stops before any work, naming the pip extra."
    out, _ = demo_run
    code = "import sys; sys.modules['coremltools'] = None; from birdlab.cli import main; sys.exit(main(sys.argv[1:]))"
    r = run(sys.executable, '-c', code, 'export', out, '--out', tmp_path/'exp', '--to', 'onnx,coreml')
    assert r.returncode == 2 and 'pip install "birdlab[coreml]"' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'exp').exists()

def test_export_refuses_a_broken_int8(demo_run, tmp_path):
    "An int8 model below the accuracy bar is not written; the command says why, with the figures, and the fp32 export stands."
    out, r = demo_run
    assert r.returncode == 0, r.stderr[-3000:]
    r = run('birdlab', 'export', out, '--out', tmp_path/'exp', '--to', 'onnx,ort', '--int8-max-drop', '-1')   # a bar no model can pass (-0.01 is passed when int8 gets one more of 30 photos right)
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(l.split()[:4]==['onnx_int8', 'refused:', 'int8', 'test'] for l in r.stdout.splitlines()) and 'model_int8.onnx was not written' in r.stderr, r.stdout + r.stderr
    assert sorted(f.name for f in (tmp_path/'exp').glob('model*')) == ['model.json', 'model.onnx', 'model.ort', 'model.ort.json', 'model.required_operators.config']
