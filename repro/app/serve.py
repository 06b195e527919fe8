"""``python -m repro serve``: a search page on this machine, served by the standard library's
``http.server`` on 127.0.0.1 only. One page (HTML, CSS and script inline: it loads nothing
from anywhere else) with a query box, a language picker and k; the hits as a grid of images
with their names and scores; click one for its tags in the query's language and in English.

Routes (all GET): ``/`` the page; ``/api/info`` the model and image set; ``/api/search?q=&
lang=&k=`` the hits (the JSON of ``search --json``); ``/api/tag?id=&langs=&k=`` the tags of
an image of the set (the JSON of ``tag --json``); ``/image/ID`` an image of the set (no
other file is served). A bad parameter is a 400 with ``{"error": "<one line>"}``.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from repro.app import render
from repro.app.model import Model
from repro.core.errors import ReproError
from repro.data.paper import LANGS

#: The languages the picker offers: the package's codes, with Japanese as ISO's ``ja``
#: (``jp`` is accepted too), each with its name in that language.
PICKER = (("en", "English"), ("de", "Deutsch"), ("es", "español"), ("fr", "français"),
          ("it", "italiano"), ("ja", "日本語"), ("ko", "한국어"), ("pl", "polski"),
          ("ru", "русский"), ("tr", "Türkçe"), ("zh", "中文"))
assert len(PICKER) == len(LANGS)
#: The most results a page asks for (one search ranks at most the whole set anyway).
MAX_K = 100

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>xlir-repro search</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
header p { margin: .2em 0; color: #555; font-size: 90%; }
form { margin: 1em 0; display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
#query { width: 22em; font-size: 110%; padding: .2em; }
#k { width: 4em; }
main { display: flex; gap: 2em; align-items: flex-start; }
#results { display: grid; grid-template-columns: repeat(auto-fill, 9.5em); gap: .8em; flex: 1; }
.hit { border: 1px solid #ccc; border-radius: 6px; padding: .4em; margin: 0; cursor: pointer;
       text-align: center; background: #fafafa; }
.hit.chosen { border-color: #06c; background: #eef5ff; }
.hit img { width: 72px; height: 72px; image-rendering: pixelated; }
.hit .name { font-size: 90%; overflow-wrap: anywhere; }
.hit .english, .hit .meta { font-size: 75%; color: #666; }
#tags { width: 22em; }
#tags table { border-collapse: collapse; font-size: 90%; }
#tags td, #tags th { padding: .1em .5em; text-align: left; }
#error { color: #b00; }
</style></head>
<body>
<header><h1>Search images in any language</h1>
<p id="model"></p><p id="imageset"></p></header>
<form id="search">
<input id="query" name="q" placeholder="a query, e.g. gato" autofocus required>
<select id="lang" name="lang">__OPTIONS__</select>
<label>k <input id="k" name="k" type="number" min="1" max="__MAX_K__" value="__K__"></label>
<button id="go" type="submit">Search</button>
</form>
<p id="error"></p><p id="summary"></p>
<main><section id="results"></section><aside id="tags"></aside></main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function modelLine(m) {
  return "model: " + m.source + " (" + m.kind + "; arm " + m.arm + ", text tower " +
    m.text_tower + ", image backbone " + m.image_backbone + ", seed " + m.seed + ")";
}
function setLine(s) {
  const parts = Object.entries(s.splits).map(([k, v]) => k + " " + v).join(", ");
  return "images: " + s.name + ", " + s.size + " images" + (parts ? " (" + parts + ")" : "");
}
function hitCard(h, lang) {
  const card = el("figure", "hit");
  card.dataset.id = h.image_id;
  const img = el("img");
  img.src = "/image/" + encodeURIComponent(h.image_id);
  img.alt = h.name_en || h.image_id;
  card.append(img, el("div", "rank", "#" + h.rank));
  card.append(el("div", "name", h.name === null ? h.image_id : h.name));
  if (h.name !== null && h.name !== h.name_en) card.append(el("div", "english", h.name_en));
  card.append(el("div", "score", h.score.toFixed(3)));
  if (h.split) card.append(el("div", "meta", h.split + " split"));
  card.addEventListener("click", () => showTags(card, h, lang));
  return card;
}
async function showTags(card, h, lang) {
  document.querySelectorAll(".hit.chosen").forEach((c) => c.classList.remove("chosen"));
  card.classList.add("chosen");
  const langs = lang === "en" ? "en" : lang + ",en";
  const panel = $("tags");
  panel.replaceChildren(el("p", "", "tagging " + (h.name_en || h.image_id) + " ..."));
  try {
    const got = await getJSON("/api/tag?id=" + encodeURIComponent(h.image_id) +
                              "&langs=" + langs + "&k=" + $("k").value);
    const item = got.images[0];
    const table = el("table");
    const head = el("tr");
    head.append(el("th", "", "rank"), ...got.langs.map((l) => el("th", "", l)));
    table.append(head);
    item.tags[got.langs[0]].forEach((_, r) => {
      const row = el("tr");
      row.append(el("td", "", String(r + 1)));
      got.langs.forEach((l) => {
        const t = item.tags[l][r];
        row.append(el("td", "", t.tag + " (" + t.score.toFixed(3) + ")"));
      });
      table.append(row);
    });
    panel.replaceChildren(el("h2", "", "Tags of " + (item.names.en || item.image_id)), table);
  } catch (e) { panel.replaceChildren(el("p", "", "error: " + e.message)); }
}
async function search(ev) {
  ev.preventDefault();
  const q = $("query").value, lang = $("lang").value, k = $("k").value;
  $("error").textContent = "";
  try {
    const got = await getJSON("/api/search?q=" + encodeURIComponent(q) + "&lang=" +
                              encodeURIComponent(lang) + "&k=" + encodeURIComponent(k));
    const s = got.searches[0];
    $("summary").textContent = "top " + s.hits.length + " for \\u201c" + s.query + "\\u201d (" +
      s.lang + ") among " + got.images.size + " images";
    $("results").replaceChildren(...s.hits.map((h) => hitCard(h, s.lang)));
    $("tags").replaceChildren();
  } catch (e) { $("error").textContent = "error: " + e.message; }
}
$("search").addEventListener("submit", search);
getJSON("/api/info").then((info) => {
  $("model").textContent = modelLine(info.model);
  $("imageset").textContent = setLine(info.images);
});
</script>
</body></html>
"""


def page(k: int) -> str:
    """The search page, with the language picker filled and ``k`` as the default."""
    options = "".join(f'<option value="{code}">{code} ({name})</option>' for code, name in PICKER)
    return (PAGE.replace("__OPTIONS__", options).replace("__K__", str(k))
            .replace("__MAX_K__", str(MAX_K)))


class SearchApp:
    """What the page asks, answered by a loaded :class:`repro.app.model.Model` over one image
    set (``images``: as :meth:`Model.images` takes it); one question at a time (a lock),
    since the model keeps state."""

    def __init__(self, model: Model, images, k: int):
        self.model, self.images, self.k = model, images, k
        self.lock = threading.Lock()
        self.image_set = model.images(images)  # embedded now, not at the first query
        self.by_id = {p.image_id: p for p in self.image_set.pictures}

    def info(self) -> dict:
        return {"model": self.model.info().to_dict(), "images": self.image_set.info.to_dict(),
                "k": self.k}

    def search(self, params: dict) -> dict:
        """``q``, ``lang`` (default en) and ``k`` (default the server's) -> search JSON."""
        query, lang, k = _param(params, "q"), _param(params, "lang", "en"), self._k(params)
        with self.lock:
            found = self.model.search([query], lang, k, self.images)
        return render.search_json(self.model.info(), self.image_set.info, found)

    def tag(self, params: dict) -> dict:
        """``id`` (an image of the set), ``langs`` (comma-separated) and ``k`` -> tag JSON."""
        picture = self.picture(_param(params, "id"))
        langs = [c for c in _param(params, "langs", "en").split(",") if c.strip()]
        with self.lock:
            tagged = self.model.tag([picture.path], langs, self._k(params))
        return render.tag_json(self.model.info(), langs, tagged)

    def picture(self, image_id: str):
        if image_id not in self.by_id:
            raise ReproError(f"id {image_id}: no such image in {self.image_set.info.name}")
        return self.by_id[image_id]

    def _k(self, params: dict) -> int:
        text = _param(params, "k", str(self.k))
        if not text.isdigit() or not 1 <= int(text) <= MAX_K:
            raise ReproError(f"k {text}: must be a whole number from 1 to {MAX_K}")
        return int(text)


def _param(params: dict, name: str, default: str | None = None) -> str:
    """The query-string parameter ``name`` (its first value), or ``default``; a one-line error
    when it is missing and has no default."""
    values = params.get(name)
    if values:
        return values[0]
    if default is None:
        raise ReproError(f"{name}: missing; give ?{name}=...")
    return default


def handler_for(app: SearchApp) -> type:
    """A request handler class bound to ``app``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            url = urlsplit(self.path)
            params = parse_qs(url.query)
            try:
                if url.path == "/":
                    self._send(200, page(app.k).encode(), "text/html; charset=utf-8")
                elif url.path == "/api/info":
                    self._json(200, app.info())
                elif url.path == "/api/search":
                    self._json(200, app.search(params))
                elif url.path == "/api/tag":
                    self._json(200, app.tag(params))
                elif url.path.startswith("/image/"):
                    path = Path(app.picture(unquote(url.path[len("/image/"):])).path)
                    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    self._send(200, path.read_bytes(), kind)
                else:
                    self._json(404, {"error": f"{url.path}: no such page"})
            except ReproError as exc:
                self._json(400, {"error": str(exc)})

        def _json(self, status: int, body: dict) -> None:
            self._send(status, json.dumps(body, ensure_ascii=False).encode(),
                       "application/json; charset=utf-8")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # one short line per request, on stderr
            print(f"serve: {self.command} {self.path} {args[1] if len(args) > 1 else ''}",
                  file=sys.stderr)

    return Handler


def make_server(model: Model, images, port: int, k: int) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:``port`` (0: a free port; see ``server.server_address``) for
    ``model`` over ``images``, its image set embedded and its text tower loaded."""
    app = SearchApp(model, images, k)
    model.text_tower()  # loaded now: the first query costs milliseconds too
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler_for(app))
    except OSError as exc:
        raise ReproError(f"--port {port}: cannot listen on 127.0.0.1 "
                         f"({exc.strerror or exc})") from None


def serve(model: Model, images, port: int, k: int) -> None:
    """Serve the page until interrupted; prints its address on stdout first."""
    server = make_server(model, images, port, k)
    host, bound = server.server_address[:2]
    print(f"serving http://{host}:{bound}/ (model {model.info().source}; Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
