"The photo-array loader under real conditions: loader processes, a full disk, an interrupted build, and `birdlab cache`."
import os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np, pytest, torch
from conftest import ROOT, SAMPLE, run

def _py(code:str, **kw):
    return subprocess.Popen([sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

def test_loader_processes_give_the_same_batches(tmp_path):
    "Two loader processes (each mapping the array itself) give the validation batches and the labels of the in-process loader."
    from birdlab.data import get_dls
    kw = dict(size=96, bs=16, seed=1, cache=tmp_path, device=torch.device('cpu'))
    d0, d2 = get_dls(SAMPLE, num_workers=0, **kw), get_dls(SAMPLE, num_workers=2, **kw)
    assert type(d2.train).__name__ == 'ArrayDL' and d2.train.fake_l.num_workers == 2
    v0 = [(x.clone(), y.clone()) for x,y in d0.valid]; v2 = [(x.clone(), y.clone()) for x,y in d2.valid]
    assert len(v0) == len(v2) == 2
    for (a,ya),(b,yb) in zip(v0, v2): assert torch.equal(a, b) and torch.equal(ya, yb)
    ys = torch.cat([y for _,y in d2.train])           # a whole training epoch through the processes
    have = np.bincount(d0.train.y, minlength=30)                      # each photo's class, from the table
    assert len(ys) == 80 and (np.bincount(ys.numpy(), minlength=30) <= have).all()   # 5 full batches of distinct training photos
    assert len(list((tmp_path/'arrays').glob('*.u8'))) == 1      # built once, shared

def test_full_disk_leaves_no_array(tmp_path):
    "A disk that cannot hold the array fails before any photo is decoded, says what it needed and where, and leaves nothing."
    p = _py(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                 # a write past the limit fails (EFBIG) instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))  # files can grow to 300 KB: as if the disk were full
        from birdlab.data import get_dls
        get_dls({str(SAMPLE)!r}, size=128, cache={str(tmp_path)!r})""")
    out, err = p.communicate(timeout=300)
    assert p.returncode != 0
    assert 'Cannot reserve the photo array' in err and 'GB)' in err and str(tmp_path/'arrays') in err, err[-2000:]
    assert 'decoding' not in out                                       # failed before the first photo
    assert list((tmp_path/'arrays').iterdir()) == []

def test_interrupted_build_is_never_trusted(tmp_path):
    "A build killed halfway leaves only a temporary file: the next run builds a whole array, and `birdlab cache clean` removes the leftover."
    p = _py(f"""
        from birdlab.data import PhotoArray
        import birdlab.core
        files = sorted(birdlab.core.sample_path().glob('*/*.jpg'))
        PhotoArray.build(files*8, 700, workers=1, cache={str(tmp_path)!r})""")   # slow on purpose: 1,200 photos at 700 px, one thread
    arrays = tmp_path/'arrays'
    for _ in range(600):
        if arrays.is_dir() and any(arrays.glob('.*.tmp')): break
        time.sleep(0.1)
    time.sleep(1)
    p.kill(); p.communicate()
    assert [f.suffix for f in arrays.iterdir()] == ['.tmp'] and not list(arrays.glob('*.json'))
    r = run('birdlab', 'cache', 'ls', '--cache', tmp_path)
    assert r.returncode == 0 and 'interrupted' in r.stdout, r.stdout + r.stderr
    from birdlab.data import get_dls
    dls = get_dls(SAMPLE, size=64, bs=8, cache=tmp_path)              # builds its own array; the leftover is not read
    assert dls.one_batch()[0].shape == (8, 3, 64, 64)
    r = run('birdlab', 'cache', 'clean', '--cache', tmp_path)
    assert r.returncode == 0 and 'interrupted' in r.stdout, r.stdout + r.stderr
    assert not list(arrays.glob('.*.tmp')) and len(list(arrays.glob('*.json'))) == 1

def test_ctrl_c_stops_the_build_at_once(tmp_path):
    "Ctrl-C during a build stops it within seconds (not after every photo) and removes the partial file."
    p = _py(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C as in a terminal, even when the tests run in the background (which ignores SIGINT)
        from birdlab.data import PhotoArray
        import birdlab.core
        files = sorted(birdlab.core.sample_path().glob('*/*.jpg'))
        PhotoArray.build(files*8, 700, workers=2, cache={str(tmp_path)!r})""")
    arrays = tmp_path/'arrays'
    for _ in range(600):
        if arrays.is_dir() and any(arrays.glob('.*.tmp')): break
        time.sleep(0.1)
    time.sleep(1)
    t0 = time.time(); p.send_signal(signal.SIGINT); out, err = p.communicate(timeout=60)
    assert time.time()-t0 < 20 and 'KeyboardInterrupt' in err, (p.returncode, err[-2000:])
    assert list(arrays.iterdir()) == []

def test_build_without_posix_fallocate(tmp_path, monkeypatch):
    "Where the OS has no posix_fallocate (macOS, Windows), the space is reserved by writing zeros, and the array is the same."
    import birdlab.core
    from birdlab.data import PhotoArray
    files = sorted(birdlab.core.sample_path().glob('*/*.jpg'))[:10]
    a = PhotoArray.build(files, 96, cache=tmp_path/'a')
    monkeypatch.delattr(os, 'posix_fallocate')
    b = PhotoArray.build(files, 96, cache=tmp_path/'b')
    assert b.fn.stat().st_size == a.fn.stat().st_size == 10*96*128*3
    assert np.array_equal(np.asarray(a.data), np.asarray(b.data))
