"The docs, nbdev's half: nbdev-proc-nbs runs clean, the preview renders, and a real browser shows every public function."
import importlib, re, sys
from pathlib import Path
import pytest
from conftest import run, ROOT, open_page

CHAPTERS = {'00_core':'core', '00b_testing':'testing', '01_scrape':'scrape', '03_split':'split', '03b_audit':'audit', '04_data':'data', '05_models':'models', '05a_recipes':'recipes', '05b_clean':'clean',
            '06_learner':'learner', '05c_distrib':'distrib', '07_evaluate':'evaluate', '08_interpret':'interpret', '12d_compare':'compare', '10_ensemble':'ensemble', '11_distill':'distill', '12_inference':'inference', '12b_export':'export', '12c_hub':'hub', '13_serve':'serve', '14_cli':'cli'}

@pytest.fixture(scope='module')
def preview():
    r = run('nbdev-proc-nbs', cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    r = run(sys.executable, ROOT/'tools'/'docs.py', 'preview', cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    return ROOT/'_proc'/'preview'

def test_readme_is_rendered_from_index():
    sys.path.insert(0, str(ROOT/'tools'))
    import docs
    assert (ROOT/'README.md').read_text() == docs.readme_text(), "README.md is stale: run `python tools/docs.py readme`"

def test_index_lists_every_chapter(preview, browser):
    open_page(browser, (preview/'index.html').as_uri())
    links = [a.get_attribute('href').rsplit('/', 1)[-1] for a in browser.find_elements('css selector', '#chapters a')]
    assert set(f'{c}.html' for c in CHAPTERS) <= set(links)

@pytest.mark.parametrize('nb,mod', CHAPTERS.items())
def test_chapter_shows_every_public_name(preview, browser, nb, mod):
    open_page(browser, (preview/f'{nb}.html').as_uri())
    heads = {h.text.strip().rstrip('¶').strip() for h in browser.find_elements('css selector', 'h3, h4')}
    names = importlib.import_module(f'birdlab.{mod}').__all__
    funcs = [n for n in names if callable(getattr(importlib.import_module(f'birdlab.{mod}'), n))]
    missing = [n for n in funcs if n not in heads]
    assert not missing, f'{nb}: no show_doc section for {missing}'
    assert browser.find_element('css selector', 'h1').text.strip().rstrip('¶').strip() == mod

def test_imports_point_backwards():
    "Each module imports only the modules of earlier chapters, in the sidebar's order: data flows down the book."
    order = [l.strip()[2:-len('.ipynb')] for l in (ROOT/'nbs'/'sidebar.yml').read_text().splitlines() if l.strip().startswith('- ') and l.strip().endswith('.ipynb')]
    pos = {CHAPTERS[nb]: i for i,nb in enumerate(nb for nb in order if nb in CHAPTERS)}
    assert set(pos) == set(CHAPTERS.values())
    later = [f'{m} imports {d}' for m in pos for d in set(re.findall(r'^\s*(?:from (?:\.|birdlab\.)|import birdlab\.)(\w+)', (ROOT/'birdlab'/f'{m}.py').read_text(), re.M))
             if d in pos and pos[d] > pos[m]]
    assert not later, later
