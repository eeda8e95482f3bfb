"""Training throughput: the plain fastai input path vs birdlab's (presize cache + GPU batch augmentation) vs the model-bound limit.

    python bench/train_throughput.py [--n 3000] [--bs 256] [--size 224] [--batches 30] [--compile] [--full-train] [--loader-only] [--build-only] [--full-train-only]

Makes `--n` full-size web-like JPEGs (the bundled sample photos upsampled to 800-1600 px on the long
side and re-encoded at quality 90) in a temporary folder, then measures, with the same model
(EfficientNet-Lite0), batch size and precision (bf16 autocast + channels_last on CUDA, fp32 on CPU):

(a) plain fastai: `ImageBlock` from the JPEG files, `Resize` on the CPU in the loader workers,
    `aug_transforms` on the device; the loader alone, and training steps fed by it;
(b) birdlab: `get_dls` with the presize cache (built once first, its time reported separately);
(c) the model-bound limit: training steps on random tensors already on the device.

With `--full-train`, also a full `birdlab.learner.train` on the bundled sample with each input
path (photo array, presize cache, plain files): epoch wall time, time to the best validation
accuracy and test accuracy (the paths must agree). Prints tables with the device and versions.

With `--loader-only` (the CPU table): no model and no augmentation, one loader process and one
torch thread, so the figures are photos/s per core: (a) plain fastai (decode + Resize per photo,
every epoch), (b) birdlab's per-photo presize cache through fastai's item pipeline, (c) birdlab's
photo array (whole batches by index, the default), and (d) the floor: batches sliced from the same
memory-mapped array with no loader at all. Also the array's build time, size on disk and the peak
anonymous memory (RssAnon) the build took, to show it never holds the photos in RAM; `--build-only`
measures only that (e.g. `--n 10000`).
"""
import argparse, os, platform, random, shutil, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, torch, torch.nn.functional as F
from PIL import Image
import fastai, timm
from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, parent_label, get_image_files, RandomSplitter, Resize, aug_transforms, Normalize
from birdlab.core import default_device, sample_path
from birdlab.data import get_dls, _num_workers, PhotoArray
from birdlab.models import create_model, model_stats

def make_jpegs(dest:Path, n:int, seed:int=0)->Path:
    "`n` JPEGs of 800-1600 px (long side) from the sample photos, one folder per species (made in threads: PIL releases the GIL)."
    from concurrent.futures import ThreadPoolExecutor
    rng = random.Random(seed)
    src = sorted(sample_path().glob('*/*.jpg'))
    jobs = [(src[i % len(src)], i, rng.randint(800, 1600), rng.uniform(0.66, 1.0)) for i in range(n)]
    for f in src: (dest/f.parent.name).mkdir(parents=True, exist_ok=True)
    def one(job):
        f, i, long, squash = job
        im = Image.open(f).convert('RGB')
        w,h = im.size; s = long/max(w, h)
        im = im.resize((round(w*s), round(h*s*squash)), Image.BICUBIC)   # web photos are rarely square
        im.save(dest/f.parent.name/f'{i:05d}.jpg', quality=90)
    with ThreadPoolExecutor(os.cpu_count()) as ex: list(ex.map(one, jobs))
    return dest

def plain_dls(path, size, bs, device, nw):
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label, splitter=RandomSplitter(0.1, seed=0),
                   item_tfms=Resize(int(round(size*8/7))), batch_tfms=aug_transforms(size=size))
    return db.dataloaders(path, bs=bs, device=device, num_workers=nw, pin_memory=device.type=='cuda')

def _prep(model, device, compile_):
    model = model.to(device)
    if device.type=='cuda': model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile_ else model

def train_rate(model, batches, device, n:int, warm:int=3)->float:
    "Images/s of training steps (forward, backward, SGD step) over `n` batches from iterator `batches`, after `warm`."
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    ac = torch.autocast('cuda', dtype=torch.bfloat16) if device.type=='cuda' else torch.autocast('cpu', enabled=False)
    seen, t0 = 0, None
    for i,(x,y) in enumerate(batches):
        if i==warm:
            if device.type=='cuda': torch.cuda.synchronize()
            t0, seen = time.perf_counter(), 0
        if i==warm+n: break
        x,y = torch.Tensor(x).as_subclass(torch.Tensor), torch.Tensor(y).as_subclass(torch.Tensor)   # plain tensors, as inside fastai's loss
        if device.type=='cuda': x = x.contiguous(memory_format=torch.channels_last)
        with ac: loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        seen += len(x)
    if device.type=='cuda': torch.cuda.synchronize()
    return seen/(time.perf_counter()-t0)

def loader_rate(dl, n:int, warm:int=3)->float:
    seen, t0 = 0, None
    for i,(x,y) in enumerate(dl):
        if i==warm: t0, seen = time.perf_counter(), 0
        if i==warm+n: break
        seen += len(x)
    if x.is_cuda: torch.cuda.synchronize()
    return seen/(time.perf_counter()-t0)

def forever(dl):
    while True: yield from dl

def _rss_anon()->int:
    "This process's anonymous resident memory in bytes (not the file pages a memory map brings in)."
    for l in open('/proc/self/status'):
        if l.startswith('RssAnon:'): return int(l.split()[1])*1024
    return 0

class PeakAnon:
    "Sample RssAnon every 20 ms in a thread; `.peak` is the highest seen."
    def __enter__(self):
        import threading
        self.peak, self.start, self._stop = 0, _rss_anon(), threading.Event()
        def poll():
            while not self._stop.is_set(): self.peak = max(self.peak, _rss_anon()); time.sleep(0.02)
        self._t = threading.Thread(target=poll, daemon=True); self._t.start(); return self
    def __exit__(self, *a): self._stop.set(); self._t.join()

def epoch_rate(dl, epochs:int=2)->float:
    "Photos/s over `epochs` full passes of `dl`, after one warm-up batch."
    next(iter(dl)); seen, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for x,y in dl: seen += len(x)
    return seen/(time.perf_counter()-t0)

def build_only(data:Path, root:Path, size:int):
    "Build the photo array alone: time, size on disk, and the peak anonymous memory it took (it must not grow with the data set)."
    t = time.perf_counter()
    with PeakAnon() as mem: pa = PhotoArray.build(sorted(data.rglob('*.jpg')), size, cache=root/'cache')
    print(f"photo array of {len(pa)} photos at {size} px: built in {time.perf_counter()-t:.1f} s with {os.cpu_count()} threads; "
          f"{pa.fn.stat().st_size/1e9:.2f} GB on disk ({pa.fn.stat().st_size/len(pa)/1e3:.0f} KB each); "
          f"peak anonymous memory during the build {(mem.peak-mem.start)/1e6:+.0f} MB over the start")

def loader_only(data:Path, root:Path, size:int, bs:int):
    "The loader table: photos/s per core of each input path, no model, no augmentation, same photos, same run."
    torch.set_num_threads(1)
    cpu, rows = torch.device('cpu'), []
    db = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label, splitter=RandomSplitter(0.3, seed=0), item_tfms=Resize(size))
    dla = db.dataloaders(data, bs=bs, device=cpu, num_workers=0)   # 70% train, as get_dls below
    rows.append(dict(path='(a) plain fastai: decode + Resize per photo', photos_s_per_core=epoch_rate(dla.train)))
    dlb = get_dls(data, size=size, bs=bs, aug='none', device=cpu, num_workers=0, loader='presize', cache=root/'cache', check=False)
    rows.append(dict(path='(b) birdlab presize cache, per photo', photos_s_per_core=epoch_rate(dlb.train)))
    t = time.perf_counter()
    with PeakAnon() as mem: dlc = get_dls(data, size=size, bs=bs, aug='none', device=cpu, num_workers=0, cache=root/'cache')
    build = time.perf_counter()-t
    rows.append(dict(path='(c) birdlab photo array (default)', photos_s_per_core=epoch_rate(dlc.train)))
    pa = dlc.train.photos
    class Floor:   # batches of random rows sliced straight from the memory map: what any loader of this array is bounded by
        n, idx = len(dlc.train_ds), np.arange(len(dlc.train_ds))
        def __iter__(self):
            np.random.shuffle(self.idx)
            for i in range(0, self.n-bs+1, bs): yield torch.from_numpy(pa.data[np.sort(self.idx[i:i+bs]), :, :size]).permute(0, 3, 1, 2), None
    rows.append(dict(path='(d) floor: slices of the same memory map, no loader', photos_s_per_core=epoch_rate(Floor())))
    df = pd.DataFrame(rows); df['vs_plain'] = df.photos_s_per_core/df.photos_s_per_core[0]
    n = len(dlc.train_ds)
    print(f"\nLoader only ({n} training photos, batch {bs}, {size} px, one process, one torch thread, no model, no augmentation):")
    print(df.round(1).to_string(index=False))
    print(f"photo array: built in {build:.1f} s with {os.cpu_count()} threads; {pa.fn.stat().st_size/1e6:.0f} MB on disk for {len(pa)} photos "
          f"({pa.fn.stat().st_size/len(pa)/1e3:.0f} KB each); peak anonymous memory during the build {(mem.peak-mem.start)/1e6:+.0f} MB over the start")

def full_train(device):
    from birdlab.learner import train
    from birdlab.evaluate import get_preds, classification_metrics
    rows = []
    for loader in ('files', 'presize', 'array'):
        tmp = Path(tempfile.mkdtemp())
        try:
            t0 = time.perf_counter()
            learn = train(sample_path(), epochs=10, size=224, bs=16, lr=8e-3, out=tmp/'run', loader=loader, cache=tmp/'cache')
            total = time.perf_counter()-t0
            h = pd.read_csv(tmp/'run'/'history.csv')
            h = h[h.epoch.astype(str)!='epoch']
            secs = h.time.map(lambda s: sum(int(p)*60**i for i,p in enumerate(reversed(str(s).split(':')))))
            best = h.accuracy.astype(float).idxmax()
            acc = classification_metrics(get_preds(learn))['test_accuracy']
            rows.append(dict(path=loader, epochs=len(h), s_per_epoch=round(secs.mean(), 1),
                             s_to_best_valid_acc=int(secs[:best+1].sum()), best_valid_acc=float(h.accuracy.astype(float).max()), test_acc=acc, total_s=round(total)))
        finally: shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nFull `train` on the bundled sample (90 train / 30 valid / 30 test photos, Lite0, 224 px, 1+10 epochs, bs 16):")
    print(pd.DataFrame(rows).to_string(index=False))

if __name__=='__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=3000); ap.add_argument('--bs', type=int, default=256)
    ap.add_argument('--size', type=int, default=224); ap.add_argument('--batches', type=int, default=30)
    ap.add_argument('--workers', type=int, default=None); ap.add_argument('--compile', action='store_true')
    ap.add_argument('--full-train', action='store_true'); ap.add_argument('--loader-only', action='store_true'); ap.add_argument('--build-only', action='store_true')
    ap.add_argument('--full-train-only', action='store_true', help='only the --full-train table')
    ap.add_argument('--dir', type=Path, help='keep the JPEGs (and cache) here')
    a = ap.parse_args()
    device = default_device()
    nw = _num_workers(device) if a.workers is None else a.workers
    gpu = torch.cuda.get_device_name() if device.type=='cuda' else f'CPU ({platform.processor() or platform.machine()})'
    print(f"device: {gpu}, {os.cpu_count()} CPU cores, {nw} loader workers; torch {torch.__version__}, fastai {fastai.__version__}, timm {timm.__version__}; "
          f"Lite0, {a.size} px, batch {a.bs}, {'bf16 autocast + channels_last' if device.type=='cuda' else 'fp32'}{', torch.compile' if a.compile else ''}")
    if a.full_train_only: full_train(device); raise SystemExit
    root = a.dir or Path(tempfile.mkdtemp())
    try:
        data = root/'jpegs'
        if not data.exists():
            t = time.perf_counter(); make_jpegs(data, a.n); print(f"made {a.n} JPEGs (800-1600 px) in {time.perf_counter()-t:.0f} s, {sum(f.stat().st_size for f in data.rglob('*.jpg'))/2**20:.0f} MB")
        if a.build_only: build_only(data, root, a.size); raise SystemExit
        if a.loader_only: loader_only(data, root, a.size, a.bs); raise SystemExit
        model = create_model('efficientnet_lite0', n_out=30)
        stats = model_stats(model)
        m = _prep(model, device, a.compile)
        rows = []
        # (a) plain fastai
        dls = plain_dls(data, a.size, a.bs, device, nw); dls.add_tfms([Normalize.from_stats(*stats)], 'after_batch')
        nb = min(a.batches, len(dls.train)-4)
        la = loader_rate(forever(dls.train), nb)
        ta = train_rate(m, forever(dls.train), device, nb)
        rows.append(dict(path='(a) plain fastai (JPEG decode + Resize per epoch)', loader_img_s=la, train_img_s=ta))
        # (b) birdlab
        t = time.perf_counter()
        dlb = get_dls(data, size=a.size, bs=a.bs, device=device, num_workers=nw, cache=root/'cache', check=False)
        build = time.perf_counter()-t
        dlb.add_tfms([Normalize.from_stats(*stats)], 'after_batch')
        lb = loader_rate(forever(dlb.train), nb)
        tb = train_rate(m, forever(dlb.train), device, nb)
        rows.append(dict(path='(b) birdlab (photo array + batch aug on device)', loader_img_s=lb, train_img_s=tb))
        # (c) model-bound
        x = torch.randn(a.bs, 3, a.size, a.size, device=device); y = torch.randint(0, 30, (a.bs,), device=device)
        tc = train_rate(m, iter(lambda: (x, y), None), device, nb)
        rows.append(dict(path='(c) model-bound (random tensors on the device)', loader_img_s=float('nan'), train_img_s=tc))
        df = pd.DataFrame(rows)
        df['vs_plain'] = df.train_img_s/ta; df['vs_limit'] = df.train_img_s/tc
        print(f"\nphoto array build (once, {len(dlb.train_ds)+len(dlb.valid_ds)} photos, {nw or 1}+ threads): {build:.0f} s; {nb} timed batches each")
        print(df.round(2).to_string(index=False))
        if a.full_train: full_train(device)
    finally:
        if not a.dir: shutil.rmtree(root, ignore_errors=True)
