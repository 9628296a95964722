#!/usr/bin/env bash
# Lists import cycles between the modules of each crate: two or more modules
# that reach each other through `crate::…` / `super::…` paths (in `use`
# lines or inline, grouped `{…}` imports expanded; comments and strings are
# ignored). A module is a file: `src/a.rs` or `src/a/mod.rs` is `a`,
# `src/a/b.rs` is `a::b`; inline modules (`mod tests { … }`) belong to their
# file. A path to a root item (`crate::Foo`) counts as an edge to the module
# the crate root re-exports it from (`pub use foo::Foo;` in lib.rs/main.rs).
# `self::` paths (a module to its own children) are not counted, nor src/bin.
#
# Usage: scripts/import-cycles.sh [--exclude DIR]... [CRATE_DIR]...
#   With no CRATE_DIR, checks every workspace member in the root Cargo.toml.
#   Prints each cycle (its modules and the edges between them, with the
#   names each edge imports) per crate; exits 1 if any crate has one, else 0.
#   --exclude DIR leaves out the member whose directory's name is DIR.
#   Example: scripts/import-cycles.sh --exclude node      (all but node)
#            scripts/import-cycles.sh nemesis             (one crate)
#   Needs only bash and python3 (standard library).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec python3 - "$root" "$@" <<'PY'
import os, re, sys
from collections import defaultdict

root, args, exclude, crates = sys.argv[1], sys.argv[2:], set(), []
while args:
    a = args.pop(0)
    if a == "--exclude" and args: exclude.add(args.pop(0).rstrip("/"))
    elif a.startswith("-"): sys.exit("usage: import-cycles.sh [--exclude DIR]... [CRATE_DIR]...")
    else: crates.append(a.rstrip("/"))
if not crates:
    members = re.search(r"members\s*=\s*\[(.*?)\]", open(os.path.join(root, "Cargo.toml")).read(), re.S).group(1)
    crates = [os.path.join(root, m) for m in re.findall(r'"([^"]+)"', members)]
crates = [c for c in crates if os.path.basename(os.path.abspath(c)) not in exclude]

# Comments, strings and char literals, blanked (newlines kept) before parsing.
NOISE = re.compile(r"//[^\n]*|/\*.*?\*/|\br(#*)\".*?\"\1|\"(?:\\.|[^\"\\])*\"|'(?:\\u\{[^}]*\}|\\.|[^\\'])'", re.S)
IDENT = re.compile(r"\s*(\w+)\s*")

def strip(src):
    return NOISE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), src)

def parse_tree(text, i):
    """Parses `a::b::{c, d::e as f}` at text[i:]; returns ([(segments, alias)], end)."""
    segs = []
    while True:
        if text.startswith("{", i):
            out, i = [], i + 1
            while True:
                j = len(text) - len(text[i:].lstrip())
                if text.startswith("}", j): return [(segs + s, a) for s, a in out], j + 1
                sub, i = parse_tree(text, j)
                out += sub
                i = len(text) - len(text[i:].lstrip())
                if text.startswith(",", i): i += 1
        m = IDENT.match(text, i)
        if not m: return [(segs, None)], i
        segs.append(m.group(1)); i = m.end()
        if text.startswith("::", i): i = len(text) - len(text[i + 2:].lstrip()); continue
        alias = re.match(r"as\s+(\w+)", text[i:])
        return [(segs, alias.group(1) if alias else None)], i + (alias.end() if alias else 0)

def check(crate):
    src, crate = os.path.join(crate, "src"), os.path.basename(os.path.abspath(crate))
    files = {}  # module path (tuple) -> file
    for d, _, fs in os.walk(src):
        for f in fs:
            p = os.path.relpath(os.path.join(d, f), src)
            if not f.endswith(".rs") or p.startswith("bin" + os.sep): continue
            parts = tuple(p[:-3].split(os.sep))
            if parts in (("lib",), ("main",)):
                if parts == ("main",) and os.path.exists(os.path.join(src, "lib.rs")): continue
                parts = ()
            elif parts[-1] == "mod": parts = parts[:-1]
            files[parts] = os.path.join(d, f)
    texts = {m: strip(open(f).read()) for m, f in files.items()}
    reexport = {}  # root item name -> module it is re-exported from
    for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+", texts.get((), "")):
        for segs, alias in parse_tree(texts[()], m.end())[0]:
            for name in {segs[-1], alias} - {None}: reexport[name] = tuple(segs[:-1])

    def resolve(full):
        """The file module a full path lands in, and the name it imports from there."""
        k = max(n for n in range(len(full) + 1) if tuple(full[:n]) in files)
        if k == 0 and full and full[0] in reexport:
            mod = reexport[full[0]]
            k2 = max(n for n in range(len(mod) + 1) if mod[:n] in files)
            return mod[:k2], full[0]
        return tuple(full[:k]), (full[k] if k < len(full) else None)

    edges = defaultdict(set)  # (from, to) -> names
    for mod, text in texts.items():
        stack, depth = [], 0  # inline modules open at this point: (name, depth)
        for m in re.finditer(r"\bmod\s+(\w+)\s*\{|[{}]|\b(crate|super)\s*::", text):
            if m.group(1): stack.append((m.group(1), depth)); depth += 1; continue
            if m.group(0) == "{": depth += 1; continue
            if m.group(0) == "}":
                depth -= 1
                if stack and stack[-1][1] == depth: stack.pop()
                continue
            if text[m.start() - 1 : m.start()] == ":": continue  # inside super::super::
            here = list(mod) + [s for s, _ in stack]
            for segs, _ in parse_tree(text, m.start())[0]:
                segs = segs[:-1] if segs[-1] == "self" and len(segs) > 1 else segs  # `a::{self}` is `a`
                ups = 0
                while ups < len(segs) and segs[ups] == "super": ups += 1
                base = [] if segs[0] == "crate" else here[: len(here) - ups]
                target, name = resolve(base + segs[1 if segs[0] == "crate" else ups :])
                if target == mod: continue
                if name is None or name == "*":  # a module imported whole: the names used through it
                    used = set(re.findall(r"\b%s\s*::\s*(\w+)" % re.escape(segs[-1]), text)) if segs[-1] != "*" else set()
                    names = used or {"*" if name == "*" else "(module)"}
                else: names = {name}
                edges[(mod, target)] |= names

    # Tarjan's strongly connected components; each of more than one module is a cycle.
    graph = defaultdict(set)
    for a, b in edges: graph[a].add(b)
    index, low, onstack, st, sccs = {}, {}, set(), [], []
    def visit(v):
        index[v] = low[v] = len(index); st.append(v); onstack.add(v)
        for w in sorted(graph[v]):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in onstack: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = st.pop(); onstack.discard(w); comp.add(w)
                if w == v: break
            if len(comp) > 1: sccs.append(comp)
    sys.setrecursionlimit(10000)
    for v in sorted(files):
        if v not in index: visit(v)
    name = lambda m: "::".join(m) or "crate"
    for comp in sccs:
        print(f"{crate}: cycle among {', '.join(sorted(map(name, comp)))}")
        for (a, b), ns in sorted(edges.items()):
            if a in comp and b in comp: print(f"    {name(a)} -> {name(b)}  ({', '.join(sorted(ns))})")
    if not sccs: print(f"{crate}: no cycle ({len(files)} modules)")
    return len(sccs)

found = sum(check(c) for c in crates)
sys.exit(1 if found else 0)
PY
