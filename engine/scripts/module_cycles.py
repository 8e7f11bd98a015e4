#!/usr/bin/env python3
"""Prints the cycles among the engine's modules; exits 1 if there is any.

A module depends on another when its code (tests and doc comments left
out) names it: `use crate::a::b::Item`, `use super::Item`, or a path such
as `crate::a::f()` in an expression. A name a module re-exports
(`pub use error::StateError` in `state`) counts as a dependency on the
module that defines it, so a re-export neither hides a cycle nor makes
one. A module's dependency on its own parent or children is left out:
a parent declares its children, and a child sees its parent's items as
a matter of course.

Usage: python3 engine/scripts/module_cycles.py [ENGINE_SRC_DIR]
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(path: Path, root: Path) -> tuple:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] in ("lib", "mod"):
        parts.pop()
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_code(text: str) -> str:
    """Drops items under `#[cfg(test)]`: a `mod NAME { ... }` block, a
    `mod NAME;` or `use ...;` line, or any other item up to its end."""
    out = []
    i = 0
    marker = re.compile(r"#\[cfg\(test\)\]\s*")
    while True:
        m = marker.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        j = m.end()
        # The item ends at the first `;` outside braces, or at the brace
        # that closes its body.
        depth = 0
        while j < len(text):
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif c == ";" and depth == 0:
                j += 1
                break
            j += 1
        i = j


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e as f}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as" + IDENT + "$", "", tree.split(" as ")[0])]
    prefix = tree[:brace]
    inner = tree[brace + 1 : tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for k, c in enumerate(inner):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(inner[start:k])
            start = k + 1
    parts.append(inner[start:])
    paths = []
    for part in parts:
        if part:
            paths.extend(prefix + p for p in expand_use(part))
    return paths




def uses(text: str) -> list:
    """(is_pub, path) for every path a `use` statement names."""
    found = []
    for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
        tree = re.sub(r"\s+as\s+" + IDENT, "", m.group(2))
        for path in expand_use(tree):
            found.append((m.group(1) is not None, path))
    return found


class Crate:
    def __init__(self, root: Path):
        self.modules = {}
        for path in sorted(root.rglob("*.rs")):
            text = strip_test_code(strip_comments(path.read_text()))
            self.modules[module_of(path, root)] = text
        self.reexports = {m: {} for m in self.modules}
        for module, text in self.modules.items():
            for is_pub, path in uses(text):
                if is_pub:
                    name = path.split("::")[-1]
                    self.reexports[module][name] = self.absolute(module, path)

    def absolute(self, module: tuple, path: str):
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        if segs[0] == "crate":
            base, segs = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base = module
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif module + (segs[0],) in self.modules:
            base = module
        elif (segs[0],) in self.modules and module == ():
            base = ()
        else:
            return None  # another crate, or a local name
        return base + tuple(segs)

    def target(self, absolute: tuple, seen=None):
        """The module that defines what `absolute` names."""
        seen = seen or set()
        k = len(absolute)
        while k > 0 and absolute[:k] not in self.modules:
            k -= 1
        module = absolute[:k]
        rest = absolute[k:]
        if rest and rest[0] in self.reexports.get(module, {}):
            again = self.reexports[module][rest[0]]
            if again and again not in seen:
                seen.add(again)
                return self.target(again + rest[1:], seen)
        return module

    def edges(self):
        graph = {m: set() for m in self.modules}
        path_re = re.compile(r"\b((?:crate|super|self)(?:::" + IDENT + ")+)")
        for module, text in self.modules.items():
            paths = [p for _, p in uses(text)]
            paths += path_re.findall(re.sub(r"\buse\s+[^;]+;", "", text))
            for path in paths:
                absolute = self.absolute(module, path)
                if absolute is None:
                    continue
                target = self.target(absolute)
                related = (
                    target == module
                    or target == module[: len(target)]
                    or module == target[: len(module)]
                )
                if not related:
                    graph[module].add(target)
        return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module, each
    with one cycle through it (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def one_cycle(graph: dict, component: list) -> list:
    """A shortest cycle through the component's first module."""
    inside = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                return paths[v] + [start]
            if w in inside and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def name(module: tuple) -> str:
    return "::".join(module) or "crate"


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "src"
    crate = Crate(root)
    graph = crate.edges()
    found = cycles(graph)
    for component in found:
        print(
            f"cycle among {', '.join(name(m) for m in component)}: "
            + " -> ".join(name(m) for m in one_cycle(graph, component))
        )
    print(f"{len(found)} cycle(s) among {len(graph)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
