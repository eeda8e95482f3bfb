"Scraping through real headless Chromium against a local server that mimics each engine (no internet)."
import hashlib
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from PIL import Image
import sys
from birdlab.scrape import scrape, find_chromedriver, get_driver, read_classes, collect_urls, ENGINES
from birdlab.testing import FakeEngines
from conftest import run, SAMPLE

IMGS = {f'{sp}-{i}.jpg': SAMPLE/sp/f'{i}.jpg' for sp in ('BALD EAGLE','OSTRICH','PEACOCK') for i in range(1,6)}
IMGS['eagle-copy.jpg'] = IMGS['BALD EAGLE-1.jpg']
RESULTS = {
    'bald eagle': ['BALD EAGLE-1.jpg','page.jpg','BALD EAGLE-2.jpg','missing.jpg','BALD EAGLE-3.jpg','eagle-copy.jpg',
                   'huge.jpg','fake.jpg','BALD EAGLE-4.jpg','slow.jpg','BALD EAGLE-5.jpg','BALD EAGLE-1.jpg'],
    'ostrich':    [f'OSTRICH-{i}.jpg' for i in range(1,6)] + ['BALD EAGLE-3.jpg'],
    'peacock':    [f'PEACOCK-{i}.jpg' for i in range(1,6)],
}
CLASSES = {'BALD EAGLE':'bald eagle', 'OSTRICH':'ostrich'}

@pytest.fixture(scope='module')
def web():
    with FakeEngines(RESULTS, IMGS, huge_bytes=2_000_000, slow_s=3) as w: yield w

@pytest.fixture(scope='module')
def driver():
    d = get_driver(); yield d; d.quit()

def _scrape(web, driver, dest, engine='bing', n=10, **kw):
    return scrape(CLASSES, dest, n=n, engine=web.engine(ENGINES[engine]), max_bytes=1_000_000, timeout=1, delay=0, driver=driver, **kw)

@pytest.mark.parametrize('engine', ['bing', 'ddg', 'google'])
def test_engine_collects_all_results_through_lazy_loading(web, driver, engine):
    urls = collect_urls(driver, web.engine(ENGINES[engine]), 'bald eagle', 50, pause=0.2)
    names = [u.rsplit('/', 1)[-1] for u,_ in urls]
    assert names == list(dict.fromkeys(RESULTS['bald eagle']))   # all 11 distinct, in order: needs scrolling past the first 4
    assert all(p and '/pages/' in p for _,p in urls)

@pytest.mark.parametrize('engine', ['bing', 'ddg', 'google'])
def test_scrape_files_manifest_dedupe_and_resume(web, driver, tmp_path, engine):
    dest = tmp_path/'raw'
    summ = _scrape(web, driver, dest, engine)
    man = pd.read_csv(dest/'manifest.csv', keep_default_na=False)
    assert list(man.columns) == ['label','query','engine','page_url','image_url','sha256','width','height','bytes','fetched_at','status','file']
    ok = man[man.status=='ok']
    assert summ.loc['BALD EAGLE','downloaded'] == 5 and summ.loc['OSTRICH','downloaded'] == 5
    for r in ok.itertuples():     # files are verified RGB JPEGs, hashed from the bytes served
        f = dest/r.file
        im = Image.open(f); assert im.format == 'JPEG' and im.mode == 'RGB' and im.size == (int(r.width), int(r.height))
        src = IMGS[r.image_url.rsplit('/', 1)[-1]]
        assert r.sha256 == hashlib.sha256(src.read_bytes()).hexdigest() and int(r.bytes) == src.stat().st_size
    assert sorted(p.name for p in (dest/'BALD EAGLE').iterdir()) == sorted(Path(f).name for f in ok[ok.label=='BALD EAGLE'].file)
    st = dict(zip(man.image_url.str.rsplit('/', n=1).str[-1] + '|' + man.label, man.status))
    assert st['page.jpg|BALD EAGLE'] == 'skipped:content_type:text/html'
    assert st['fake.jpg|BALD EAGLE'] == 'skipped:not_an_image'
    assert st['huge.jpg|BALD EAGLE'] == 'skipped:too_big'             # the byte cap
    assert st['missing.jpg|BALD EAGLE'] == 'skipped:http_404'
    assert st['slow.jpg|BALD EAGLE'] == 'skipped:timeout'
    assert st['eagle-copy.jpg|BALD EAGLE'] == 'skipped:duplicate'      # same bytes, other URL
    assert st['BALD EAGLE-3.jpg|OSTRICH'] == 'skipped:duplicate_of:BALD EAGLE'   # cross-class record
    assert (man.image_url.str.endswith('BALD EAGLE-1.jpg') & (man.label=='BALD EAGLE')).sum() == 1   # URL dedupe
    assert not list(dest.rglob('*.tmp'))

    # resume: a second run fetches no image and writes nothing new
    before = {p: p.stat().st_mtime_ns for p in dest.rglob('*.jpg')}
    n_rows, hits = len(man), len(web.hits)
    _scrape(web, driver, dest, engine)
    assert web.downloads(hits) == []
    assert {p: p.stat().st_mtime_ns for p in dest.rglob('*.jpg')} == before
    assert len(pd.read_csv(dest/'manifest.csv')) == n_rows

def test_resume_after_partial_run(web, driver, tmp_path):
    dest = tmp_path/'raw'
    _scrape(web, driver, dest, n=2)
    assert len(list((dest/'BALD EAGLE').glob('*.jpg'))) == 2
    hits = len(web.hits)
    _scrape(web, driver, dest, n=5)
    got = web.downloads(hits)
    assert len(list((dest/'BALD EAGLE').glob('*.jpg'))) == 5
    assert len(got) >= 3 and '/img/BALD%20EAGLE-1.jpg' not in got and '/img/BALD%20EAGLE-2.jpg' not in got   # not fetched again

def test_cli_scrape(web, tmp_path):
    (tmp_path/'classes.csv').write_text('label,query\nPEACOCK,peacock\n')
    # the command as a user runs it, with its DuckDuckGo entry pointed at the local server (the engines are data)
    code = (f"import sys, dataclasses; from birdlab.scrape import ENGINES; ENGINES['ddg'] = dataclasses.replace(ENGINES['ddg'], base_url={web.base('ddg')!r}); "
            "from birdlab.cli import main; sys.exit(main(sys.argv[1:]))")
    r = run(sys.executable, '-c', code, 'scrape', '--classes', tmp_path/'classes.csv', '--n', '3', '--engine', 'ddg',
            '--out', tmp_path/'raw', '--delay', '0')
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((tmp_path/'raw'/'PEACOCK').glob('*.jpg'))) == 3
    assert 'downloaded' in r.stdout

def test_classes_and_driver_errors(tmp_path, monkeypatch):
    (tmp_path/'c.txt').write_text('# species\nBALD EAGLE,bald eagle\nBALD EAGLE,bald eagle flying\nOSTRICH\n')
    assert read_classes(tmp_path/'c.txt') == {'BALD EAGLE':['bald eagle','bald eagle flying'], 'OSTRICH':['OSTRICH']}
    with pytest.raises(FileNotFoundError, match='does not exist'): read_classes(tmp_path/'none.txt')
    with pytest.raises(FileNotFoundError, match='does not exist'): find_chromedriver(str(tmp_path/'chromedriver'))
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='apt-get install chromium chromium-driver'): find_chromedriver()
    with pytest.raises(ValueError, match='Unknown engine'): scrape(CLASSES, tmp_path, engine='altavista')

def test_phone_photo_is_saved_upright(tmp_path):
    "A photo stored on its side with an EXIF Orientation tag is saved upright (the re-encoded JPEG has no tag left to apply)."
    from birdlab.scrape import fetch_image
    src = SAMPLE/'OSTRICH'/'1.jpg'
    im = Image.open(src).convert('RGB')
    exif = Image.Exif(); exif[0x0112] = 6
    im.crop((0, 0, 224, 160)).transpose(Image.Transpose.ROTATE_90).save(tmp_path/'phone.jpg', exif=exif, quality=95)
    with FakeEngines({}, {'phone.jpg': tmp_path/'phone.jpg'}) as w:
        jpg,raw,wd,ht = fetch_image(f'{w.url}/img/phone.jpg', timeout=5)
    (tmp_path/'saved.jpg').write_bytes(jpg)
    saved = Image.open(tmp_path/'saved.jpg')
    assert (wd, ht) == saved.size == (224, 160)          # landscape again, as the phone showed it
    assert saved.getexif().get(0x0112) in (None, 1)
    diff = abs(np.asarray(saved, dtype=float) - np.asarray(im.crop((0, 0, 224, 160)), dtype=float)).mean()
    assert diff < 5, diff
