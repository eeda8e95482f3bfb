"""Plant wrong labels and off-topic photos into a copy of a real data set, audit it, and train before vs after cleaning.

    python bench/label_noise.py [--data ../shared/data/cub25] [--flip 0.05] [--seeds 0,1,2] [--size 128] [--epochs 4] [--train-seeds 42,43,44] [--no-train]

1. Plants problems in a table over the data (the photos are not copied; off-topic photos are written
   to a temporary folder): `--flip` of the photos get another species' label; off-topic photos are the
   two photos that ship with scikit-learn, crops of them, and drawings and text rendered with Pillow,
   each under a random species.
2. Runs `birdlab.clean.find_noise` and prints, per kind, how many were planted, found, and the
   precision and recall at the default thresholds, with the findings on clean photos counted as false;
   once per planting seed in `--seeds` (different flipped photos), then the mean.
3. Unless `--no-train`, on the first seed: trains the same recipe (Lite0, `--size`, `--epochs`) on the dirty set and on
   the set with the findings quarantined (dropped from the table), on one split, once per training seed in
   `--train-seeds`, and prints the test accuracy of each on the same clean test photos, and the mean.
"""
import argparse, os, platform, random, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image, ImageDraw

def off_topic_photos(out:Path, n:int, seed:int=0)->list:
    "`n` images of no bird: scikit-learn's two sample photos, random crops of them, and drawings and text from Pillow."
    from sklearn.datasets import load_sample_images
    rng = random.Random(seed); out.mkdir(parents=True, exist_ok=True)
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    fns = []
    for i in range(n):
        kind = i % 4
        if kind == 0: im = photos[i//4 % 2]
        elif kind == 1:
            p = photos[rng.randrange(2)]; w,h = p.size; s = rng.randint(120, min(w, h))
            x,y = rng.randrange(w-s+1), rng.randrange(h-s+1); im = p.crop((x, y, x+s, y+s))
        elif kind == 2:   # a drawing: shapes on a plain background
            im = Image.new('RGB', (300, 300), tuple(rng.randrange(256) for _ in range(3))); d = ImageDraw.Draw(im)
            for _ in range(6):
                box = sorted(rng.sample(range(300), 2)); box2 = sorted(rng.sample(range(300), 2))
                d.ellipse((box[0], box2[0], box[1], box2[1]), fill=tuple(rng.randrange(256) for _ in range(3)))
        else:              # text, as on a sign or a logo
            im = Image.new('RGB', (320, 240), 'white'); d = ImageDraw.Draw(im)
            for r in range(6): d.text((10, 10+35*r), rng.choice(['SALE 50%', 'Birdwatching tours', 'MAP', 'www.example.org', 'Logo']), fill='black')
        fn = out/f'offtopic_{i}.jpg'; im.convert('RGB').save(fn, quality=90); fns.append(fn)
    return fns

def plant(df:pd.DataFrame, flip:float, n_off:int, tmp:Path, seed:int=0)->pd.DataFrame:
    "The table with `flip` of its labels changed and `n_off` off-topic photos added; columns true_label and planted."
    rng = np.random.default_rng(seed)
    df = df.copy(); df['true_label'] = df.label; df['planted'] = ''
    classes = sorted(df.label.unique())
    idx = rng.choice(len(df), int(round(flip*len(df))), replace=False)
    for i in idx: df.loc[df.index[i], ['label','planted']] = rng.choice([c for c in classes if c != df.label.iloc[i]]), 'label_issue'
    off = off_topic_photos(tmp/'offtopic', n_off, seed)
    extra = pd.DataFrame(dict(path=[str(f) for f in off], label=rng.choice(classes, len(off)), split='', true_label='(none)', planted='off_topic'))
    return pd.concat([df, extra], ignore_index=True)

def scores(df:pd.DataFrame, found:pd.DataFrame)->pd.DataFrame:
    rows = []
    for kind in ('label_issue', 'off_topic'):
        got = set(found.path[found.issue==kind]); want = set(df.path[df.planted==kind])
        tp = len(got & want)
        rows.append(dict(kind=kind, planted=len(want), found=len(got), correct=tp,
                         precision=tp/len(got) if got else float('nan'), recall=tp/len(want) if want else float('nan')))
    clean = set(df.path[df.planted==''])
    rows.append(dict(kind='findings on clean photos', planted=len(clean), found=len(set(found.path) & clean), correct=0, precision=float('nan'), recall=float('nan')))
    return pd.DataFrame(rows)

def train_acc(table, size, epochs, seed=42):
    from birdlab.learner import train
    from birdlab.data import test_dl
    with tempfile.TemporaryDirectory() as d:
        learn = train(table, size=size, epochs=epochs, bs=32, lr=8e-3, seed=seed, out=Path(d)/'run')
        tdl = test_dl(learn.dls, table[table.split=='test'])
        p,y = learn.get_preds(dl=tdl)
    return float((p.argmax(1)==y).float().mean())

if __name__=='__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(Path(__file__).resolve().parent.parent.parent/'shared'/'data'/'cub25'))
    ap.add_argument('--flip', type=float, default=0.05); ap.add_argument('--off', type=int, default=40)
    ap.add_argument('--size', type=int, default=128); ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--no-train', action='store_true'); ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--train-seeds', default='42,43,44')
    a = ap.parse_args()
    from birdlab.split import read_folder, split_table
    from birdlab.clean import find_noise
    import birdlab
    print(f"device: {'CUDA '+torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU, '+str(os.cpu_count())+' cores, '+platform.machine()}; "
          f"birdlab {birdlab.__version__}, torch {torch.__version__}")
    seeds = [int(s) for s in a.seeds.split(',')]
    t0 = time.time(); tabs = []
    for seed in seeds:
        ts = time.time()
        d = plant(read_folder(a.data), a.flip, a.off, Path(tempfile.mkdtemp()), seed)
        f = find_noise(d)
        tabs.append(scores(d, f).assign(seed=seed))
        print(f"\n1. {a.data}: {len(d)} photos, {a.flip:.0%} labels flipped, {a.off} off-topic photos added (seed {seed}); find_noise took {time.time()-ts:.0f} s")
        print(tabs[-1].drop(columns='seed').to_string(index=False, float_format=lambda x: f'{x:.1%}'))
        if seed == seeds[0]: df, found = d, f
    allt = pd.concat(tabs)
    print(f"\nMean over seeds {a.seeds}:"); print(allt.groupby('kind', sort=False)[['found','correct','precision','recall']].mean().to_string(float_format=lambda x: f'{x:.2f}'))
    a.seed = seeds[0]
    if a.no_train: sys.exit()
    # one split for both; the test photos are clean (true labels, no off-topic), so both models are judged alike
    sp = split_table(df[df.planted!='off_topic'].assign(label=lambda d: d.true_label).drop(columns=['true_label','planted']), seed=a.seed)
    df = df.drop(columns='split').merge(sp[['path','split']], on='path', how='left').fillna({'split':'train'})
    test = df[df.split=='test'].assign(label=lambda d: d.true_label)
    dirty = pd.concat([df[df.split!='test'], test])[['path','label','split']]
    bad = set(found.path)
    cleaned = pd.concat([df[(df.split!='test') & ~df.path.isin(bad)], test])[['path','label','split']]
    tseeds = [int(s) for s in a.train_seeds.split(',')]
    sets = {'dirty': dirty, 'cleaned (findings removed)': cleaned}
    res = pd.DataFrame({name: [train_acc(t.reset_index(drop=True), a.size, a.epochs, seed=s) for s in tseeds] for name,t in sets.items()},
                       index=pd.Index(tseeds, name='training seed')).T
    res['mean'] = res.mean(axis=1); res.insert(0, 'photos', [int((t.split!='test').sum()) for t in sets.values()])
    print(f"\n2. Lite0, {a.size} px, 1+{a.epochs} epochs, lr 8e-3, one split, training seeds {a.train_seeds}; test accuracy on {len(test)} clean photos")
    print(res.to_string(float_format=lambda x: f'{x:.1%}'))
    print(f"cleaned - dirty: {res['mean'].iloc[1]-res['mean'].iloc[0]:+.1%} (mean), better in {int((res.iloc[1, 1:-1] > res.iloc[0, 1:-1]).sum())} of {len(tseeds)} seeds")
    print(f"total {time.time()-t0:.0f} s")
