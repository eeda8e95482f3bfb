"""Docs without Quarto: README.md from nbs/index.ipynb, and a browsable HTML preview of the processed notebooks.

`nbdev-docs` builds the real site but needs the Quarto binary. This script covers the nbdev half:

    nbdev-proc-nbs                  # nbdev processes nbs/ into _proc/ (show_doc cells added and run)
    python tools/docs.py preview    # _proc/*.ipynb -> _proc/preview/*.html + index.html
    python tools/docs.py readme     # README.md from nbs/index.ipynb (what `nbdev-readme` does with Quarto)
"""
import re, sys, html
from pathlib import Path
import nbformat, yaml
from nbconvert import HTMLExporter, MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent
_DIRECTIVE = re.compile(r'^\s*#\|.*$\n?', re.M)
_CELL_KEYS = {'cell_type','id','metadata','source','outputs','execution_count','attachments'}
_QUARTO_ATTRS = re.compile(r'\{(?:target|style|\.)[^}]*\}')  # Quarto-only link/heading attributes

def _clean(nb, drop_code=False):
    "Drop hidden cells and nbdev directives; optionally drop code cells that aren't shown as examples."
    cells = []
    for c in nb.cells:
        for k in [k for k in c if k not in _CELL_KEYS]: del c[k]  # nbdev's processors add their own keys
        c.metadata = {}
        src = c.source
        if c.cell_type=='raw' and src.startswith('---'):  # nbdev moved the title into Quarto front matter
            meta = yaml.safe_load(src.strip().strip('-')) or {}
            c = nbformat.v4.new_markdown_cell(f"# {meta.get('title','')}\n\n> {meta.get('description','')}")
            c.pop('id', None)
        if re.search(r'^\s*#\|\s*(hide|default_exp)', src, re.M): continue
        if c.cell_type=='code':
            if re.search(r'^\s*#\|\s*echo:\s*false', src, re.M): c.metadata['transient'] = {'remove_source': True}
            c.source = _DIRECTIVE.sub('', src).strip()
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = _QUARTO_ATTRS.sub('', md if isinstance(md, str) else ''.join(md))
            if drop_code and not c.source: continue
        cells.append(c)
    nb.cells = cells
    return nb

def readme_text():
    "README.md's text, rendered from nbs/index.ipynb."
    nb = _clean(nbformat.read(ROOT/'nbs'/'index.ipynb', as_version=4), drop_code=True)
    body,_ = MarkdownExporter(exclude_output=True).from_notebook_node(nb)
    return '<!-- Generated from nbs/index.ipynb by `python tools/docs.py readme`: edit the notebook, not this file. -->\n\n' + body.strip() + '\n'

def readme():
    (ROOT/'README.md').write_text(readme_text())

def preview(proc=ROOT/'_proc'):
    "Render every processed notebook to HTML under `_proc/preview`, with an index page."
    out = proc/'preview'; out.mkdir(exist_ok=True)
    exp = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    links = []
    for fn in sorted(proc.glob('*.ipynb')):
        nb = _clean(nbformat.read(fn, as_version=4))
        body,_ = exp.from_notebook_node(nb)
        (out/f'{fn.stem}.html').write_text(body)
        title = next((l.lstrip('# ').strip() for c in nb.cells if c.cell_type=='markdown' for l in c.source.splitlines() if l.startswith('# ')), fn.stem)
        links.append(f'<li><a href="{fn.stem}.html">{html.escape(title)}</a> <small>({fn.stem})</small></li>')
    (out/'index.html').write_text('<!doctype html><html><head><meta charset="utf-8"><title>birdlab docs preview</title></head>'
                                  f'<body><h1>birdlab docs preview</h1><ul id="chapters">{"".join(links)}</ul></body></html>')
    return out

if __name__=='__main__':
    cmd = sys.argv[1] if len(sys.argv)>1 else ''
    if cmd=='readme': readme()
    elif cmd=='preview': print(preview())
    else: sys.exit(__doc__)
