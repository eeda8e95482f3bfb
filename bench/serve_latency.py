"""CPU inference latency and a bounded loopback load test of `birdlab serve`.

    python bench/serve_latency.py RUN [--export EXPORT] [--n 200] [--requests 1000] [--concurrency 4]

RUN is a run folder (`birdlab demo` / `birdlab train`); EXPORT the folder `birdlab export RUN` wrote
(default RUN/export, created if missing). Prints two tables:
1. single-image latency (batch 1, model only, preprocessed input) of PyTorch eager fp32, ONNX fp32 and
   ONNX int8 on this machine's CPU: p50/p99 over `--n` runs after a warm-up;
2. the service under load: `--requests` POST /predict of real sample photos from `--concurrency`
   client threads against a real uvicorn server on 127.0.0.1: requests/s, p50/p99, errors;
3. the service's memory under big uploads: `--big` PNGs of 6300x6300 (40 MP, ~150 KB each, the
   size a security review used) sent 8 at a time, with `--max-decodes` 2 (the default) and 8 (no
   real bound on 8 clients), and with `--baseline DIR` another birdlab checkout's server beside them
   (`git worktree add /tmp/old REV`): resident memory at start, after one big photo, peak, and after all.
"""
import argparse, json, os, platform, socket, subprocess, sys, threading, time
from pathlib import Path
import numpy as np, torch, requests
import onnxruntime as ort

def pct(a, q): return float(np.percentile(np.asarray(a)*1000, q))

def model_latency(run, exp, n):
    from birdlab.interpret import load_run
    from birdlab.export import batches
    from birdlab.inference import ort_session
    learn,man,_ = load_run(run, cpu=True)
    x,_ = batches(learn, man[man.split=='test'].head(8))
    x1 = x[:1]
    m = learn.model.eval().cpu()
    xt = torch.from_numpy(x1)
    def bench(f):
        for _ in range(10): f()
        ts = []
        for _ in range(n): t = time.perf_counter(); f(); ts.append(time.perf_counter()-t)
        return ts
    rows = []
    with torch.inference_mode(): rows.append(('pytorch eager fp32', run/'model.pth', bench(lambda: m(xt))))
    for name,f in (('onnx fp32', exp/'model.onnx'), ('onnx int8', exp/'model_int8.onnx')):
        s = ort_session(f); rows.append((name, f, bench(lambda: s.run(None, {'image': x1}))))
    base = np.median(rows[0][2])
    print(f"\n1. Single-image latency, batch 1, {x1.shape[-1]} px, CPU ({torch.get_num_threads()} torch threads)")
    print(f"{'model':<20} {'MB':>6} {'p50 ms':>8} {'p99 ms':>8} {'vs eager':>9}")
    for name,f,ts in rows: print(f"{name:<20} {f.stat().st_size/2**20:>6.2f} {pct(ts,50):>8.2f} {pct(ts,99):>8.2f} {np.median(ts)/base:>8.2f}x")

def start_server(exp, *args, cwd=None):
    "A real `birdlab serve` on a free loopback port; returns (process, url) once it answers."
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, '-c', 'import sys; from birdlab.cli import main; sys.exit(main())', 'serve', str(exp), '--port', str(port), *map(str, args)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)  # `-c` imports birdlab from cwd first
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            if requests.get(url+'/health', timeout=1).ok: return p, url
        except requests.ConnectionError: time.sleep(0.5)
        if p.poll() is not None: sys.exit(f'birdlab serve exited with {p.returncode}')
    sys.exit('birdlab serve did not start')

def mem_mb(pid, key='VmRSS'):
    "Resident (VmRSS) or peak resident (VmHWM) memory of process `pid`, in MB (Linux)."
    return int(next(l for l in open(f'/proc/{pid}/status') if l.startswith(key)).split()[1])/1024

def memory_test(exp, n_big, baseline=None):
    import io
    from concurrent.futures import ThreadPoolExecutor
    from PIL import Image, ImageDraw
    im = Image.new('RGB', (6300, 6300), (90, 140, 200)); ImageDraw.Draw(im).ellipse((1500, 1500, 4800, 4800), fill=(200, 120, 40))
    b = io.BytesIO(); im.save(b, 'PNG'); png = b.getvalue()
    print(f"\n3. Service memory: {n_big} uploads of a 6300x6300 PNG ({len(png)/1e3:.0f} KB, 40 MP), 8 at a time; resident MB")
    runs = [('this birdlab, max_decodes 2 (default)', ['--max-decodes', 2], None), ('this birdlab, max_decodes 8', ['--max-decodes', 8], None)]
    if baseline: runs.append((f'baseline: {Path(baseline).name}', [], Path(baseline).resolve()))
    print(f"{'server':<38} {'at start':>9} {'after 1':>8} {'peak':>6} {'after all':>10} {'all answered':>13}")
    for name,args,cwd in runs:
        p, url = start_server(Path(exp).resolve(), *args, cwd=cwd)
        try:
            start = mem_mb(p.pid)
            post = lambda _: requests.post(url+'/predict', files={'file': ('big.png', png, 'image/png')}, timeout=120).status_code
            one = post(0); after1 = mem_mb(p.pid)
            with ThreadPoolExecutor(8) as ex: codes = list(ex.map(post, range(n_big)))
            print(f"{name:<38} {start:>9.0f} {after1:>8.0f} {mem_mb(p.pid, 'VmHWM'):>6.0f} {mem_mb(p.pid):>10.0f} {str(all(c==200 for c in [one]+codes)):>13}")
        finally: p.terminate(); p.wait(10)

def load_test(exp, n_req, conc, threads):
    p, url = start_server(exp, '--threads', threads)
    try:
        from birdlab.core import sample_path
        photos = [f.read_bytes() for f in sorted(sample_path().glob('*/*.jpg'))]
        lat, errs, lock, it = [], [0], threading.Lock(), iter(range(n_req))
        def worker():
            s = requests.Session()
            while True:
                with lock: i = next(it, None)
                if i is None: return
                t = time.perf_counter()
                try: ok = s.post(url+'/predict', files={'file': ('b.jpg', photos[i % len(photos)], 'image/jpeg')}, timeout=30).ok
                except requests.RequestException: ok = False
                with lock:
                    lat.append(time.perf_counter()-t)
                    if not ok: errs[0] += 1
        for _ in range(20): requests.post(url+'/predict', files={'file': ('b.jpg', photos[0], 'image/jpeg')})  # warm-up
        t0 = time.perf_counter()
        ws = [threading.Thread(target=worker) for _ in range(conc)]
        for w in ws: w.start()
        for w in ws: w.join()
        dt = time.perf_counter()-t0
        model = requests.get(url+'/health').json()['model']
    finally: p.terminate(); p.wait(10)
    print(f"\n2. Service load test: {n_req} POST /predict (real sample photos, multipart), {conc} client threads, loopback; model {model}, onnxruntime threads {threads or 'all'}")
    print(f"{'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(f"{n_req/dt:>10.1f} {pct(lat,50):>8.2f} {pct(lat,99):>8.2f} {errs[0]:>7}")

if __name__=='__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', type=Path); ap.add_argument('--export', type=Path)
    ap.add_argument('--n', type=int, default=200); ap.add_argument('--requests', type=int, default=1000)
    ap.add_argument('--concurrency', type=int, default=4); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--big', type=int, default=16); ap.add_argument('--skip-latency', action='store_true')
    ap.add_argument('--baseline', type=Path, help='a checkout of another birdlab version whose server to measure beside (e.g. a git worktree)')
    a = ap.parse_args()
    exp = a.export or a.run/'export'
    if not (exp/'model_int8.onnx').exists():
        from birdlab.export import export_run
        export_run(a.run, out=exp)
    print(f"device: CPU, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime {ort.__version__}")
    if not a.skip_latency: model_latency(a.run, exp, a.n); load_test(exp, a.requests, a.concurrency, a.threads)
    memory_test(exp, a.big, a.baseline)
