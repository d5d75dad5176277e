#!/usr/bin/env python3
"""The module graph of src/: which top-level module uses which, checked.

Data flows one way, camera to event (docs/ARCHITECTURE.md):

    core → ingest → detect → track → pair → embed → gallery → events / api
         → config → pipeline → cli

A module may use only modules of a lower layer (LAYERS below). Code under
`#[cfg(test)]` may reach anywhere and is not counted. A cycle, an edge that
points up the flow, or a top-level module missing from LAYERS fails the check
with the edge and the file that makes it.

    scripts/check_modules.py              # check (make test runs this)
    scripts/check_modules.py --graph      # print the edges as a Markdown list
    scripts/check_modules.py --write-doc  # put that list into docs/ARCHITECTURE.md
    scripts/check_modules.py --dot        # Graphviz

The check also fails when docs/ARCHITECTURE.md's module graph (between the
`module-graph` markers) is not the graph of the code: the document stays true;
and when `anyhow` is used outside the CLI edge (`main.rs`, `cli/`): the
library's errors are typed.

Standard library only: it runs before any set-up.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "ARCHITECTURE.md")
BEGIN, END = "<!-- module-graph:begin -->", "<!-- module-graph:end -->"

# Lower layers first. Modules in one layer may not use each other.
# A new top-level module gets a place here and a row in docs/ARCHITECTURE.md.
LAYERS = [
    ["core"],  # core: Frame, BBox, Modality, Crop, time, Sighting, Shutdown, where shipped files are
    ["onnx_runtime", "synth", "ingest"],  # onnx_runtime: the one ORT environment; synth: a tool that needs only the core
    ["detect"],
    ["track"],
    ["pair"],
    ["embed"],
    ["eval", "gallery"],  # eval: a tool over embed
    ["events", "api"],
    ["score", "config"],  # score: a tool over events (+ synth's ground truth)
    ["pipeline"],  # the wiring: starts, runs and stops the stages
    ["cli"],  # subcommands: the only place anyhow is used besides main.rs
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals, keeping line numbers."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and re.match(r"'\\[xu]", text[i:i + 3])):
            j = text.find("'", i + 2)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def drop_test_code(text):
    """Removes items under #[cfg(test)]: `mod x { … }`, `impl … { … }`, fns, `mod x;`.

    Returns the text and the names of `#[cfg(test)] mod x;` files to skip."""
    skipped = []
    while True:
        m = CFG_TEST.search(text)
        if not m:
            return text, skipped
        start = m.start()
        rest = m.end()
        semi = text.find(";", rest)
        brace = text.find("{", rest)
        if semi >= 0 and (brace < 0 or semi < brace):
            decl = text[rest:semi]
            mm = re.search(r"\bmod\s+(\w+)\s*$", decl)
            if mm:
                skipped.append(mm.group(1))
            end = semi
        else:
            end = matching_brace(text, brace)
        text = text[:start] + "\n" * text.count("\n", start, end + 1) + text[end + 1:]


def use_targets(text):
    """Top-level modules named by `crate::…` paths, with line numbers."""
    found = []
    for m in re.finditer(r"\bcrate\s*::\s*(\{|\w+)", text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(1) == "{":
            close = matching_brace(text, m.end(1) - 1)
            group = text[m.end(1):close]
            depth, item = 0, ""
            for ch in group + ",":
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if ch == "," and depth == 0:
                    name = re.match(r"\s*(\w+)", item)
                    if name and name.group(1) != "self":
                        found.append((name.group(1), line))
                    item = ""
                else:
                    item += ch
        else:
            found.append((m.group(1), line))
    return found


def module_files(name):
    single = os.path.join(ROOT, name + ".rs")
    if os.path.isfile(single):
        yield single
    folder = os.path.join(ROOT, name)
    if os.path.isdir(folder):
        for dirpath, _, files in os.walk(folder):
            for f in sorted(files):
                if f.endswith(".rs"):
                    yield os.path.join(dirpath, f)


def top_level_modules():
    text, _ = drop_test_code(strip_comments_and_strings(open(os.path.join(ROOT, "lib.rs")).read()))
    return re.findall(r"^\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;", text, re.M)


def graph():
    modules = top_level_modules()
    edges = {}  # (from, to) -> first "file:line"
    for mod in modules:
        test_files = set()
        for path in module_files(mod):
            if os.path.splitext(os.path.basename(path))[0] in test_files:
                continue
            text, skipped = drop_test_code(strip_comments_and_strings(open(path).read()))
            test_files.update(skipped)
            for target, line in use_targets(text):
                if target in modules and target != mod:
                    edges.setdefault((mod, target), f"{os.path.relpath(path, os.path.join(ROOT, '..'))}:{line}")
    return modules, edges


def cycles(modules, edges):
    """Strongly connected components with more than one module (Tarjan)."""
    succ = {m: sorted(t for (f, t) in edges if f == m) for m in modules}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in modules:
        if m not in index:
            visit(m)
    return out


def graph_markdown(modules, edges):
    lines = []
    for m in sorted(modules, key=lambda m: (RANK.get(m, 99), LAYERS[RANK[m]].index(m) if m in RANK else 0, m)):
        uses = sorted((t for (f, t) in edges if f == m), key=lambda t: (RANK.get(t, 99), t))
        lines.append(f"- `{m}` → {', '.join(f'`{u}`' for u in uses) if uses else '(nothing)'}")
    return "\n".join(lines) + "\n"


def doc_graph():
    text = open(DOC).read()
    if BEGIN not in text or END not in text:
        return text, None
    return text, text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv):
    modules, edges = graph()
    if "--write-doc" in argv:
        text, _ = doc_graph()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        open(DOC, "w").write(head + BEGIN + "\n" + graph_markdown(modules, edges) + END + tail)
        return 0
    if "--dot" in argv:
        print("digraph vireid {\n  rankdir=LR;")
        for (f, t) in sorted(edges):
            print(f'  "{f}" -> "{t}";')
        print("}")
        return 0
    if "--graph" in argv:
        print(graph_markdown(modules, edges), end="")
        return 0
    problems = []
    for m in modules:
        if m not in RANK:
            problems.append(f"module `{m}` has no layer: add it to LAYERS in scripts/check_modules.py "
                            "(and its row to docs/ARCHITECTURE.md)")
    for comp in cycles(modules, edges):
        inner = [f"{f} → {t} ({where})" for (f, t), where in sorted(edges.items()) if f in comp and t in comp]
        problems.append("cycle among " + ", ".join(comp) + ":\n      " + "\n      ".join(inner))
    for (f, t), where in sorted(edges.items()):
        if f in RANK and t in RANK and RANK[t] >= RANK[f]:
            what = "the same layer" if RANK[t] == RANK[f] else "downstream"
            problems.append(f"{f} → {t} at {where}: `{t}` is {what} of `{f}` "
                            f"(the flow is {' → '.join('/'.join(l) for l in LAYERS)}); "
                            "move the shared piece into `core` or upstream, or the wiring into `pipeline`")
    for mod in modules:
        if mod == "cli":
            continue
        for path in module_files(mod):
            text, _ = drop_test_code(strip_comments_and_strings(open(path).read()))
            if re.search(r"\banyhow\b", text):
                problems.append(f"{os.path.relpath(path, os.path.join(ROOT, '..'))} uses anyhow: the library returns typed "
                                "errors (thiserror); anyhow belongs to main.rs and cli/")
    _, documented = doc_graph()
    if documented != graph_markdown(modules, edges):
        problems.append("docs/ARCHITECTURE.md's module graph is not the code's: run scripts/check_modules.py --write-doc "
                        "and say in the text what changed")
    if problems:
        print("module graph: FAILED", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    print(f"module graph: {len(modules)} top-level modules, {len(edges)} edges, no cycle, every edge points down the flow, "
          "docs/ARCHITECTURE.md matches")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
