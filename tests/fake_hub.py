"""A Hugging Face Hub in one process, for offline tests: the calls `huggingface_hub` makes to create a
model repo, commit files and download them, on 127.0.0.1 only (set `HF_ENDPOINT` to its URL).

    python tests/fake_hub.py PORT        # serves until killed; repos live in memory

Every file is taken inline (`uploadMode: regular`), so no LFS or Xet storage is involved.
"""
import base64, hashlib, json, re, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

REPOS = {}      # repo id -> {'files': {path: bytes}, 'sha': commit id, 'private': bool}
LOCK = threading.Lock()
RID = r'[^/]+/[^/]+'   # namespace/name

LICENSES = {'apache-2.0', 'mit', 'cc0-1.0', 'cc-by-4.0', 'cc-by-sa-4.0', 'cc-by-nc-4.0', 'cc-by-nc-sa-4.0', 'bsd-3-clause', 'other', 'unknown'}

def _front_matter(text:str):
    "The YAML between the first two `---` lines of a README, or None."
    import yaml
    m = re.match(r'---\n(.*?)\n---\n', text, re.S)
    try: return yaml.safe_load(m[1]) if m else None
    except yaml.YAMLError: return None

def blob_id(b:bytes)->str: return hashlib.sha1(b'blob %d\0' % len(b) + b).hexdigest()   # git's blob id

class Hub(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass

    def send(self, code, body=b'', ctype='application/json', headers=None, head=False):
        if isinstance(body, (dict, list)): body = json.dumps(body).encode()
        self.send_response(code)
        for k,v in {'Content-Type':ctype, 'Content-Length':str(len(body)), **(headers or {})}.items(): self.send_header(k, v)
        self.end_headers()
        if not head: self.wfile.write(body)

    def missing(self, what='Repository not found', code='RepoNotFound', head=False):
        self.send(404, {'error':what}, headers={'X-Error-Code':code, 'X-Error-Message':what}, head=head)

    def body(self)->bytes: return self.rfile.read(int(self.headers.get('Content-Length') or 0))

    def repo(self, rid): return REPOS.get(rid)

    def do_POST(self):
        p = unquote(urlparse(self.path).path); data = self.body()
        if p=='/api/repos/create':
            j = json.loads(data); rid = f"{j['organization']}/{j['name']}" if j.get('organization') else j['name']
            with LOCK:
                if rid in REPOS: return self.send(409, {'error':'You already created this model repo', 'url':f'{self.base}/{rid}'})
                REPOS[rid] = dict(files={}, sha='0'*40, private=bool(j.get('private')))
            return self.send(200, {'url':f'{self.base}/{rid}', 'name':rid, 'id':rid})
        if p=='/api/validate-yaml':   # the model card's metadata, checked as the Hub does before a commit
            meta, errors = _front_matter(json.loads(data)['content']), []
            if not isinstance(meta, dict): errors.append('the YAML front matter must be a mapping')
            elif 'license' in meta and meta['license'] not in LICENSES: errors.append(f"\"license\" must be one of the Hub's licence ids, not {meta['license']!r}")
            return self.send(400 if errors else 200, {'errors':[{'message':e} for e in errors], 'warnings':[]})
        if m := re.fullmatch(r'/api/models/(%s)/preupload/(.+)' % RID, p):
            if not self.repo(m[1]): return self.missing()
            files = json.loads(data)['files']
            return self.send(200, {'files':[dict(path=f['path'], uploadMode='regular', shouldIgnore=False) for f in files]})
        if m := re.fullmatch(r'/api/models/(%s)/commit/(.+)' % RID, p):
            r = self.repo(m[1])
            if not r: return self.missing()
            with LOCK:
                for line in data.decode().splitlines():
                    if not line.strip(): continue
                    op = json.loads(line)
                    if op['key']=='file': r['files'][op['value']['path']] = base64.b64decode(op['value']['content'])
                    elif op['key']=='deletedFile': r['files'].pop(op['value']['path'], None)
                    elif op['key']!='header': return self.send(400, {'error':f"this fake Hub takes no {op['key']!r} operation"})
                r['sha'] = hashlib.sha1((r['sha'] + ''.join(f + blob_id(b) for f,b in sorted(r['files'].items()))).encode()).hexdigest()
            return self.send(200, {'commitUrl':f"{self.base}/{m[1]}/commit/{r['sha']}", 'commitOid':r['sha'], 'pullRequestUrl':None})
        self.send(404, {'error':f'no route POST {p}'})

    def do_GET(self, head=False):
        p = unquote(urlparse(self.path).path)
        if m := re.fullmatch(r'/api/models/(%s)(?:/revision/([^/]+))?' % RID, p):
            r = self.repo(m[1])
            if not r: return self.missing(head=head)
            return self.send(200, {'id':m[1], 'modelId':m[1], 'sha':r['sha'], 'private':r['private'], 'disabled':False, 'gated':False,
                                   'siblings':[{'rfilename':f} for f in sorted(r['files'])], 'tags':[], 'downloads':0, 'likes':0}, head=head)
        if m := re.fullmatch(r'/api/models/(%s)/tree/([^/]+)(/.*)?' % RID, p):
            r = self.repo(m[1])
            if not r: return self.missing(head=head)
            under = (m[3] or '').strip('/')
            files = [f for f in sorted(r['files']) if not under or f.startswith(under+'/')]
            return self.send(200, [dict(type='file', path=f, size=len(r['files'][f]), oid=blob_id(r['files'][f])) for f in files], head=head)
        if m := re.fullmatch(r'/(%s)/resolve/([^/]+)/(.+)' % RID, p):
            r = self.repo(m[1])
            if not r: return self.missing(head=head)
            b = r['files'].get(m[3])
            if b is None: return self.missing('Entry not found', 'EntryNotFound', head=head)
            return self.send(200, b, 'application/octet-stream', {'X-Repo-Commit':r['sha'], 'ETag':f'"{blob_id(b)}"'}, head=head)
        self.send(404, {'error':f'no route GET {p}'}, head=head)

    def do_HEAD(self): self.do_GET(head=True)

def serve(port:int=0)->ThreadingHTTPServer:
    "A fake Hub on 127.0.0.1:`port` (0: any free port), in a daemon thread."
    srv = ThreadingHTTPServer(('127.0.0.1', port), Hub)
    Hub.base = f'http://127.0.0.1:{srv.server_address[1]}'
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv

if __name__=='__main__':
    srv = serve(int(sys.argv[1]) if len(sys.argv)>1 else 0)
    print(Hub.base, flush=True)
    threading.Event().wait()
