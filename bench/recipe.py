"""Does birdlab's default recipe beat the plain fastai notebook a user would otherwise write? One run, same splits.

    python bench/recipe.py [--data ../shared/data/cub25] [--seeds 1,2,3] [--size 224] [--epochs 8]
                           [--candidate "lr=8e-3 aug=strong"] [--candidate ...] [--cpu] [--skip-plain] [--skip-default]
                           [--species 8] [--per-species 30] [--plain-seed 101] [--preds FILE]
    python bench/recipe.py --pair RUN1.csv RUN2.csv [--first "(b) birdlab defaults"]   # no training

For each split seed, the data is split once (70/15/15, stratified) and every recipe trains on that split:
(a) **plain fastai**, as the fastai docs teach: a DataBlock with a `Resize(size)` item transform and
    `aug_transforms()`, the same offline EfficientNet-Lite0 ImageNet weights (normalised as they
    expect), cross-entropy, accuracy, `fine_tune(epochs, 2e-3)`, nothing else;
(b) **birdlab train**, its defaults (only `size`, `epochs` and the split are set);
(c) each `--candidate`: birdlab train with those options changed (space-separated `key=value`,
    values parsed as Python literals: `lr=8e-3 aug=strong freeze_epochs=0 label_smoothing=0 wd=0.1`,
    `reduce_lr=None early_stop=None`, `recipe=fast`, `epochs=16 lr=4e-3`; `mixup=0.4` and `cutmix=1.0` add
    fastai's `MixUp`/`CutMix` callbacks with that alpha; `sam=0.05` trains with sharpness-aware minimisation of that
    radius and `erase=0.25` erases a random rectangle of that share of the training photos (`sharpness_aware`,
    `random_erasing` below: candidates only, not `train` settings); `ema=0.97` is `train`'s average of the weights over the unfrozen
    epochs (`birdlab.learner.WeightEMA`); `drop_path_rate=0.2` and `drop_rate=0.3` are timm's stochastic depth and
    dropout (`make_learner`); `seed=101` trains `default` on the same split with another seed (the head's start, the
    order of the photos and their augmentation; the split stays the split seed's): how far training's own chance moves
    the figures, against which a candidate's lead is read; `aug={'min_scale':0.35}` gives `aug_transforms` arguments (no spaces inside a candidate's
    values); `--size` and `--epochs` apply unless the candidate sets them).
`--plain-seed 101` trains (a) once more on each split with that training seed (`--skip-plain` leaves out only the run with the
split's seed): training's own chance for the notebook, as `--candidate seed=101` gives it for `default`.
Test accuracy is measured on the split's held-out test photos (choose recipes on validation, report test);
for birdlab's recipes also with test-time augmentation (`birdlab evaluate --tta`), in its own column.
Prints one table (per seed, and the mean) with the device, versions and wall time, then each recipe's test accuracy
against the first's on the same photos with a 95% paired bootstrap interval (`birdlab.evaluate.accuracy_difference`),
which says whether the photos can tell the two apart, and the same on the validation photos, where recipes are chosen;
`--preds` keeps every recipe's right and wrong per test and validation photo (rewritten after every run).
`--species N` and `--per-species M` train on a smaller data set drawn from `--data` (N species chosen at random,
at most M photos of each, both drawn with seed 0 so every run gets the same photos): how a recipe does on a
data set the size of a first scrape.
`--pair` trains nothing: it reads the `--preds` files of earlier runs and prints each recipe against `--first` (default:
the first recipe in the first file) with the same interval, over the splits in `--seeds` (a recipe with other splits than
`--first` is left out, with a note). Runs on the same data, split seeds and photos test on the
same photos, and this CPU repeats a recipe's results to the photo, so a candidate run on its own (`--skip-default`)
can be set against `default`'s rows from another run; photos that do not match stop it with an error. That holds on one
machine only: another processor (or the kernels torch picks for it, AVX2 or AVX-512) gives other results for the same
seeds (a 2-core AMD EPYC with AVX2 gave split 1's 128 px `lr=4e-3` run 93.2% valid and 87.4% test, where the machine
behind the learner chapter's tables gave 94.6% and 85.6%). So `--preds` records the machine, and `--pair` refuses files
from different machines; it records `--size`, `--epochs` and the photos too, and `--pair` refuses files that differ in them.
"""
import argparse, ast, os, platform, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch

def per_photo(p, y, paths)->tuple:
    "Accuracy of predictions `p` for labels `y`, and right/wrong per photo keyed by resolved path (to pair recipes photo by photo)."
    ok = (p.argmax(1)==y).numpy()
    return float(ok.mean()), pd.Series(ok, index=[str(Path(f).resolve()) for f in paths])

def plain_fastai(table:pd.DataFrame, size:int, epochs:int, seed:int, device)->dict:
    "The fastai docs' recipe on `table`'s train/valid rows, trained with `seed`; test accuracy on its test rows."
    from fastai.vision.all import (DataBlock, ImageBlock, CategoryBlock, ColReader, ColSplitter, Resize, aug_transforms,
                                   Normalize, Learner, CrossEntropyLossFlat, accuracy)
    from birdlab.models import create_model, model_stats
    from birdlab.learner import body_head_splitter
    from birdlab.core import seed_everything
    seed_everything(seed)
    tv = table[table.split!='test'].assign(is_valid=lambda d: d.split=='valid').reset_index(drop=True)
    model = create_model('efficientnet_lite0', n_out=table.label.nunique(), pretrained=True)
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_x=ColReader('path'), get_y=ColReader('label'),
                       splitter=ColSplitter('is_valid'), item_tfms=Resize(size),
                       batch_tfms=[*aug_transforms(size=size), Normalize.from_stats(*model_stats(model))])
    dls = dblock.dataloaders(tv, bs=32, device=device, num_workers=0 if device.type=='cpu' else min(8, os.cpu_count()))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy, splitter=body_head_splitter)
    t0 = time.time(); learn.fine_tune(epochs, 2e-3)
    te = table[table.split=='test'].reset_index(drop=True)
    acc, ok = per_photo(*learn.get_preds(dl=dls.test_dl(te, with_labels=True)), te.path)
    va, okv = per_photo(*learn.get_preds(dl=dls.valid), dls.valid.items.path)
    return dict(test_accuracy=acc, valid_accuracy=va, seconds=time.time()-t0, correct=ok, valid_correct=okv)

def sharpness_aware(rho:float):
    """Sharpness-aware minimisation (Foret et al., 2021) as a fastai callback: after the usual backward pass, move the
    trained weights `rho` along their gradient's direction, take the gradient there, and step from the original weights
    with it (two forward and backward passes a batch; batch norm's running statistics are updated by the first only)."""
    from fastai.vision.all import Callback
    class SAM(Callback):
        order = 60   # the second pass runs outside autocast and grad scaling: a candidate measured on the CPU, in float32
        def after_backward(self):
            ps = [p for p in self.learn.model.parameters() if p.grad is not None]
            if not ps: return
            with torch.no_grad():
                norm = torch.norm(torch.stack([p.grad.norm(2) for p in ps]), 2)
                eps = [p.grad*(rho/(norm+1e-12)) for p in ps]
                for p,e in zip(ps, eps): p.add_(e)
            bns = [m for m in self.learn.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            moms = [m.momentum for m in bns]
            for m in bns: m.momentum = 0.
            self.learn.opt.zero_grad()
            self.learn.loss_func(self.learn.model(*self.learn.xb), *self.learn.yb).backward()
            for m,mo in zip(bns, moms): m.momentum = mo
            with torch.no_grad():
                for p,e in zip(ps, eps): p.sub_(e)
    return SAM()

def random_erasing(p:float):
    "timm's `RandomErasing` (Zhong et al., 2020) on each training batch: with probability `p` a photo gets a random rectangle of noise."
    from fastai.vision.all import Callback
    from timm.data.random_erasing import RandomErasing
    class Erase(Callback):
        order = 60
        def before_fit(self): self.erase = RandomErasing(p, mode='pixel', device=self.dls.device)
        def before_batch(self):
            if self.training: self.learn.xb = (self.erase(self.xb[0].clone()),)
    return Erase()

def with_callbacks(kw:dict)->dict:
    "Candidate options that are callbacks, as `cbs`: `mixup=0.4` and `cutmix=1.0` (fastai's `MixUp`/`CutMix`), `sam=0.05`, `erase=0.25`."
    from fastai.callback.mixup import MixUp, CutMix
    makers = dict(mixup=MixUp, cutmix=CutMix, sam=sharpness_aware, erase=random_erasing)
    cbs = [f(kw[k]) for k,f in makers.items() if k in kw]
    return {**{k:v for k,v in kw.items() if k not in makers}, **({'cbs': cbs} if cbs else {})}

def birdlab_train(table:pd.DataFrame, split_seed:int, cpu:bool, **kwargs)->dict:
    "`birdlab.learner.train(table, **kwargs)` (the table's own split column kept), test accuracy on the test rows; it trains with `split_seed` unless `kwargs` give a `seed`."
    from birdlab.learner import train
    from birdlab.data import test_dl
    kwargs = with_callbacks({'seed': split_seed, **kwargs})
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        learn = train(table, cpu=cpu, out=Path(d)/'run', **kwargs)
        secs = time.time()-t0
        dl = test_dl(learn.dls)
        p,y = learn.get_preds(dl=dl)
        pt,_ = learn.tta(dl=dl)   # the same model, evaluated with test-time augmentation
        va, okv = per_photo(*learn.get_preds(dl=learn.dls.valid), learn.dls.valid.items.path)
    acc, ok = per_photo(p, y, dl.items.path)
    return dict(test_accuracy=acc, valid_accuracy=va, seconds=secs, test_accuracy_tta=per_photo(pt, y, dl.items.path)[0],
                correct=ok, valid_correct=okv)

def differences(correct:dict, first:str, photos:str='test')->pd.DataFrame:
    "Each recipe's accuracy minus `first`'s on the same (`photos`: test or valid) photos, in points, with a 95% paired bootstrap interval (photos drawn within each split)."
    from birdlab.evaluate import accuracy_difference
    base = pd.concat({s:c for (r,s),c in correct.items() if r==first}, names=['seed', 'path'])
    out = {}
    for name in dict.fromkeys(r for r,_ in correct):
        if name==first: continue
        c = pd.concat({s:c for (r,s),c in correct.items() if r==name}, names=['seed', 'path'])
        if not c.index.sort_values().equals(base.index.sort_values()):
            raise SystemExit(f"{name} and {first} were not scored on the same {photos} photos (the same data, --seeds and --species/--per-species give the same ones).")
        c = c.reindex(base.index)
        d = accuracy_difference(c.to_numpy(bool), base.to_numpy(bool), groups=base.index.get_level_values('seed'))
        out[name] = {'points': d['diff']*100, '95% from': d['lo']*100, 'to': d['hi']*100, f'{photos} photos': d['n']}
    return pd.DataFrame(out).T

def show_differences(correct:dict, first:str, source:str):
    "Print `differences` on test photos, then on validation photos (the ones recipes are chosen on) for the recipes that have them."
    for photos in ('test', 'valid'):
        c = correct[photos]
        if first not in (names := {r for r,_ in c}) or len(names) < 2: continue   # --preds files written before validation photos were kept: test only
        print(f"\n{'test' if photos=='test' else 'validation'} accuracy against {first}, on the same photos ({source}; "
              "birdlab.evaluate.accuracy_difference: 95% paired bootstrap interval, photos drawn within each split; "
              "an interval holding 0 is a difference these photos cannot show):")
        print(differences(c, first, photos).to_string(float_format=lambda x: f'{x:+.1f}', formatters={f'{photos} photos': '{:.0f}'.format}))

def machine(device:torch.device)->str:
    "The machine a run's figures belong to: the GPU, or the processor with the kernels torch chose for it and its cores (results repeat to the photo on one machine, not across)."
    if device.type=='cuda': return f"CUDA {torch.cuda.get_device_name(device)}"
    info = Path('/proc/cpuinfo')
    model = next((l.split(':', 1)[1].strip() for l in info.read_text().splitlines() if l.startswith('model name')), '') if info.is_file() else ''
    return f"CPU {model or platform.processor() or 'unknown'}, {platform.machine()}, {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores"

def run_settings(size:int, epochs:int, base:pd.DataFrame)->str:
    "What every recipe of a run shares unless its candidate changes it, as `--preds` records it: `--size`, `--epochs` and the photos."
    return f"{size} px, {epochs} epochs, {len(base)} photos of {base.label.nunique()} species"

def write_preds(correct:dict, fn:str, where:str, settings:str):
    "Right/wrong of every recipe, split and photo to CSV `fn` (recipe, seed, photos, path, correct, `where`: the `machine`, and the `run_settings`), replaced whole: a stopped run leaves the last complete one."
    from birdlab.core import atomic_write
    df = pd.concat({k: pd.concat(v, names=['recipe', 'seed', 'path']) for k,v in correct.items() if v}, names=['photos'])
    atomic_write(fn, df.rename('correct').reorder_levels(['recipe', 'seed', 'photos', 'path']).to_frame().assign(machine=where, settings=settings).to_csv())

_DIFFER = {'machine': ("These runs were made on different machines, which give different results for the same seeds, so their photos "
                       "cannot be paired: {}. Run the recipes on one machine (in one run, or in runs there), then pair those."),
           'settings': ("These runs trained at different sizes, epochs or photos, and recipe names do not say so, so pairing them would "
                        "compare more than the recipes: {}. Pair runs made with the same --size, --epochs, --species and --per-species "
                        "(a candidate that changes one says so in its name: --candidate epochs=16).")}

def check_same(found:dict, what:str='machine')->list:
    "Refuse `--preds` files that differ in `what` ('machine' or 'settings'; `found`: file -> the values it names, as `read_preds` gives); the files that name none (written before it was kept), for a note."
    seen = {}
    for f,vs in found.items():
        for x in vs: seen.setdefault(x, f)
    if len(seen) > 1: raise SystemExit(_DIFFER[what].format('; '.join(f"{f}: {v}" for v,f in seen.items())))
    return [f for f,vs in found.items() if not vs]

def read_preds(files:list)->tuple:
    "{'test'|'valid': {(recipe, seed): right/wrong per photo}} from `--preds` files (a recipe's split in several files: the first file's), and {'machine'|'settings': {file: the values it names}}."
    out, named = {'test': {}, 'valid': {}}, {'machine': {}, 'settings': {}}
    for f in files:
        df = pd.read_csv(f)
        for k in named: named[k][f] = list(df[k].dropna().unique()) if k in df else []   # older files lack one or both
        if 'photos' not in df: df['photos'] = 'test'   # files written before validation photos were kept
        for (ph,*k),g in df.groupby(['photos', 'recipe', 'seed'], sort=False): out[ph].setdefault(tuple(k), g.set_index('path').correct.astype(bool))
    return out, named

def subset(base:pd.DataFrame, species:int|None=None, per_species:int|None=None, seed:int=0)->pd.DataFrame:
    "`species` of `base`'s species chosen at random and at most `per_species` photos of each (`None`: all), drawn with `seed`."
    if species:
        have = sorted(base.label.unique())
        if species > len(have): raise SystemExit(f"--species {species}: the data has only {len(have)} species.")
        base = base[base.label.isin(pd.Series(have).sample(species, random_state=seed))]
    if per_species: base = base.sample(frac=1, random_state=seed).groupby('label').head(per_species).sort_values('path')
    return base.reset_index(drop=True)

def parse_candidate(s:str)->dict:
    "`'lr=8e-3 aug=strong'` -> {'lr': 0.008, 'aug': 'strong'}"
    out = {}
    for kv in s.split():
        k,_,v = kv.partition('=')
        try: out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError): out[k] = v
    return out

if __name__=='__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', default=str(Path(__file__).resolve().parent.parent.parent/'shared'/'data'/'cub25'))
    ap.add_argument('--seeds', default='1,2,3'); ap.add_argument('--size', type=int, default=224); ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--candidate', action='append', default=[]); ap.add_argument('--cpu', action='store_true')
    ap.add_argument('--skip-plain', action='store_true', help='leave out (a), e.g. to compare two birdlab options')
    ap.add_argument('--skip-default', action='store_true', help='leave out (b), e.g. to run a candidate on more splits (compare across runs with care)')
    ap.add_argument('--species', type=int, help='train on this many of the species (chosen at random, seed 0)')
    ap.add_argument('--per-species', type=int, help='at most this many photos of each species (chosen at random, seed 0)')
    ap.add_argument('--plain-seed', type=int, action='append', default=[], help="train (a) again on each split with this training seed (the split stays the split seed's)")
    ap.add_argument('--preds', help='write whether each recipe got each test and validation photo right to this CSV (recipe, seed, photos, path, correct), after every run')
    ap.add_argument('--pair', nargs='+', metavar='CSV', help='train nothing: read these --preds files and print each recipe against --first')
    ap.add_argument('--first', help='with --pair: the recipe the others are set against (default: the first one read)')
    a = ap.parse_args()
    if a.pair:
        seeds = {int(x) for x in a.seeds.split(',')}   # only these splits, e.g. those a stopped run finished
        read, named = read_preds(a.pair)
        correct = {ph: {k:v for k,v in c.items() if k[1] in seeds} for ph,c in read.items()}
        names = list(dict.fromkeys(r for r,_ in correct['test']))
        first = a.first or names[0]
        if first not in names: ap.error(f"--first {first!r} is in none of {a.pair}: give one of {names}")
        for what,why in (('machine', 'results repeat to the photo only on one machine'), ('settings', 'recipe names do not give the size and epochs')):
            if len(a.pair) > 1 and (unsaid := check_same(named[what], what)):
                print(f"note: no {what} recorded in {', '.join(unsaid)} (written before --preds kept it); "
                      f"{why}, so pair only runs you know share them.")
        splits = {r: sorted({s for q,s in correct['test'] if q==r}) for r in names}
        if other := [r for r in names if splits[r]!=splits[first]]:   # e.g. a run that trained (a) on one split only
            print(f"note: left out {', '.join(f'{r} (splits {splits[r]})' for r in other)}: {first} has splits {splits[first]}; "
                  "give --seeds the splits both have to pair them.")
            correct = {ph: {k:v for k,v in c.items() if k[0] not in other} for ph,c in correct.items()}
        show_differences(correct, first, ', '.join(a.pair)); raise SystemExit
    import fastai, timm, birdlab
    from birdlab.split import read_data, split_table
    from birdlab.core import default_device
    device = default_device(a.cpu); where = machine(device)
    plain = {'(a) plain fastai': None, **{f'(a) plain fastai, seed={s}': s for s in a.plain_seed}}   # None: the split's seed
    recipes = {**plain, '(b) birdlab defaults': {}, **{f'(c) {c}': parse_candidate(c) for c in a.candidate}}
    if a.skip_plain: del recipes['(a) plain fastai']
    if a.skip_default: del recipes['(b) birdlab defaults']
    if not recipes: ap.error('nothing to run: --skip-plain and --skip-default leave out both recipes; add a --candidate')
    base = subset(read_data(a.data), a.species, a.per_species).assign(split='')
    rows, correct, t0 = [], {'test': {}, 'valid': {}}, time.time()
    for seed in [int(s) for s in a.seeds.split(',')]:
        table = split_table(base, seed=seed)
        for name,kw in recipes.items():
            if name in plain: r = plain_fastai(table, a.size, a.epochs, seed if plain[name] is None else plain[name], device)   # --plain-seed 0 is a seed too
            else: r = birdlab_train(table, seed, a.cpu, **{'size':a.size, 'epochs':a.epochs, **kw})
            correct['test'][name, seed], correct['valid'][name, seed] = r.pop('correct'), r.pop('valid_correct')
            rows.append(dict(recipe=name, seed=seed, **r)); print(rows[-1], flush=True)
            if a.preds: write_preds(correct, a.preds, where, run_settings(a.size, a.epochs, base))   # after every run: a stopped run keeps what it finished
    df = pd.DataFrame(rows)
    print(f"\ndevice: {where}; birdlab {birdlab.__version__}, fastai {fastai.__version__}, timm {timm.__version__}, torch {torch.__version__}")
    print(f"data: {a.data} ({len(base)} photos, {base.label.nunique()} species); {a.size} px, {a.epochs} epochs; split seeds {a.seeds}; "
          f"wall time {time.time()-t0:.0f} s")
    tab = df.pivot(index='recipe', columns='seed', values='test_accuracy')
    tab['mean'] = tab.mean(axis=1); tab['valid mean'] = df.groupby('recipe').valid_accuracy.mean(); tab['s/run'] = df.groupby('recipe').seconds.mean()
    first = next(iter(recipes))   # (a), else (b), else the first candidate
    tab[f"vs {first[:3]} (points)"] = (tab['mean'] - tab.loc[first, 'mean'])*100
    if 'test_accuracy_tta' in df: tab['mean with TTA'] = df.groupby('recipe').test_accuracy_tta.mean()   # birdlab recipes: `birdlab evaluate --tta`
    print(tab.loc[list(recipes)].to_string(float_format=lambda x: f'{x:.3f}'))
    if len(recipes) > 1: show_differences(correct, first, 'this run')
