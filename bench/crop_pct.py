"""How much of the centre square should validation keep? One trained model per split, evaluated at several `crop_pct`.

    python bench/crop_pct.py [--data ../shared/data/cub25] [--seeds 1,2,3] [--size 224] [--epochs 8]
                             [--crops 1,0.9375,0.875,0.8125] [--preds FILE]

`crop_pct` (`birdlab.data.check_crop_pct`) only changes what validation, test and inference photos look like: the
centre `crop_pct` of the presized square's side, resized to the training size. So each split trains birdlab's
`default` once (with `crop_pct=1`, the whole square) and the same weights are scored at every `--crops` value, on the
validation photos (where a setting is chosen) and the test photos (where it is reported), with test-time augmentation
at 1 and 0.875. Every difference is between the same weights on the same photos: nothing but the view changes.
(With `train(crop_pct=...)` the epoch kept by `SaveModelCallback` is also chosen on that view, which can differ.)
Prints the table and each crop against `crop_pct=1` with `bench/recipe.py`'s paired interval (`birdlab.evaluate.accuracy_difference`);
`--preds` keeps right and wrong per photo, with the machine and settings (`bench/recipe.py`'s `machine` and `run_settings`),
rewritten whole after every split.
"""
import argparse, tempfile, time
from pathlib import Path
import pandas as pd, torch

if __name__=='__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(Path(__file__).resolve().parent.parent.parent/'shared'/'data'/'cub25'))
    ap.add_argument('--seeds', default='1,2,3'); ap.add_argument('--size', type=int, default=224); ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--crops', default='1,0.9375,0.875,0.8125'); ap.add_argument('--cpu', action='store_true'); ap.add_argument('--preds')
    a = ap.parse_args()
    import fastai, timm, birdlab
    from fastai.vision.augment import RandomResizedCropGPU
    from birdlab.learner import train
    from birdlab.data import test_dl, check_crop_pct
    from birdlab.split import read_data, split_table
    from birdlab.core import default_device, atomic_write
    from recipe import machine, run_settings, show_differences
    crops = [check_crop_pct(float(c)) for c in a.crops.split(',')]
    base, rows, t0 = read_data(a.data).assign(split=''), [], time.time()
    where, settings = machine(default_device(a.cpu)), run_settings(a.size, a.epochs, base)
    for seed in [int(s) for s in a.seeds.split(',')]:
        table = split_table(base, seed=seed)
        with tempfile.TemporaryDirectory() as d:
            learn = train(table, seed=seed, cpu=a.cpu, out=Path(d)/'run', size=a.size, epochs=a.epochs, crop_pct=1.)
            crop = next(t for t in learn.dls.valid.after_batch.fs if isinstance(t, RandomResizedCropGPU))   # shared by the test loader
            dl = test_dl(learn.dls)
            for c in crops:
                crop.valid_scale = c
                for photos, l in (('valid', learn.dls.valid), ('test', dl)):
                    p, y = learn.get_preds(dl=l)
                    rows += [dict(seed=seed, crop_pct=c, photos=photos, path=str(f), correct=bool(ok)) for f, ok in zip(l.items.path, (p.argmax(1)==y).tolist())]
                if c in (1., 0.875):
                    p, y = learn.tta(dl=dl)
                    rows += [dict(seed=seed, crop_pct=c, photos='test with TTA', path=str(f), correct=bool(ok)) for f, ok in zip(dl.items.path, (p.argmax(1)==y).tolist())]
        df = pd.DataFrame(rows)
        if a.preds: atomic_write(a.preds, df.assign(machine=where, settings=settings).to_csv(index=False))   # a stopped run keeps its finished splits
        print(df[df.seed==seed].groupby(['photos', 'crop_pct']).correct.mean().unstack(0).to_string(float_format=lambda x: f'{x:.3f}'), flush=True)
    print(f"\ndevice: {where}; birdlab {birdlab.__version__}, fastai {fastai.__version__}, timm {timm.__version__}, torch {torch.__version__}")
    print(f"data: {a.data}; {a.size} px, 1+{a.epochs} epochs, birdlab default; split seeds {a.seeds}; wall time {time.time()-t0:.0f} s")
    tab = df.groupby(['crop_pct', 'photos', 'seed']).correct.mean().unstack(['photos', 'seed'])
    print(tab.T.groupby(level=0).mean().T.to_string(float_format=lambda x: f'{x:.3f}'), '\n')
    correct = {ph: {(f'crop_pct={c:g}', seed): g.set_index('path').correct for (c, seed), g in df[df.photos==ph].groupby(['crop_pct', 'seed'])}
               for ph in ('test', 'valid')}
    show_differences(correct, 'crop_pct=1', 'this run')   # bench/recipe.py's paired interval, each crop against the whole square
