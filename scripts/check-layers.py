#!/usr/bin/env python3
"""Checks the layering of Sources/KFACPINN (docs/architecture.md).

Each folder is a layer and may use only what its own layer and the layers below it
declare:

    (root files) <- Linalg <- Network <- Taylor <- Operators <- Curvature <- Optimizers <- Problems <- CAPI

A name counts as declared by a layer when a file of that folder declares it at top level
(type, function, constant) or as a member of an extension (`extension TaylorPass { func f }`
in Curvature declares `f` in Curvature). A name declared by several layers belongs to the
lowest of them. Every identifier of a file (comments and string literals removed) that
belongs only to a higher layer is reported, with its file and line.

    scripts/check-layers.py            check, exit 1 on a violation
    scripts/check-layers.py --list     print the names each layer declares
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ROOT / "Sources" / "KFACPINN"
LAYERS = ["", "Linalg", "Network", "Taylor", "Operators", "Curvature", "Optimizers", "Problems", "CAPI"]

DECLARATION = re.compile(
    r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|internal|private|fileprivate|package|final|static|class|"
    r"nonisolated|mutating|override|convenience|required|indirect|lazy)\s+)*"
    r"(?:class|struct|enum|protocol|typealias|func|let|var|actor)\s+(\w+)")
EXTENSION = re.compile(r"^(?:public\s+|private\s+|fileprivate\s+)?extension\s+(\w+)")


def strip(text):
    """Removes comments and string literals, keeping line breaks."""
    text = re.sub(r'"""(?:.|\n)*?"""', lambda m: "\n" * m.group(0).count("\n"), text)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    text = re.sub(r"/\*(?:.|\n)*?\*/", lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"//[^\n]*", "", text)


def layer_of(path):
    rel = path.relative_to(SOURCES)
    folder = rel.parts[0] if len(rel.parts) > 1 else ""
    if folder not in LAYERS:
        raise SystemExit(f"{path.relative_to(ROOT)}: folder {folder!r} has no place in the layering; add it to LAYERS")
    return LAYERS.index(folder)


def top_level_types(texts):
    """The types the module declares at top level."""
    return {m.group(1) for text in texts for line in text.splitlines()
            if (m := re.match(r"(?:\w+\s+)*(?:class|struct|enum|protocol|actor)\s+(\w+)", line))}


def declarations(text, types):
    """(name, kind) of the top-level declarations ("type", "func", "global") and of the members
    of top-level extensions of the module's own types ("member"; members of extensions of other
    modules' types, such as Array, are not the module's names)."""
    found, depth, in_extension = set(), 0, False
    for line in text.splitlines():
        stripped = line.strip()
        m = DECLARATION.match(stripped)
        if depth == 0:
            e = EXTENSION.match(stripped)
            in_extension = bool(e) and e.group(1) in types
            if m:
                word = re.search(r"\b(class|struct|enum|protocol|typealias|actor|func|let|var)\s+" + m.group(1), stripped).group(1)
                kind = "func" if word == "func" else "global" if word in ("let", "var") else "type"
                found.add((m.group(1), kind))
        elif depth == 1 and in_extension and m:
            found.add((m.group(1), "member"))
        depth += line.count("{") - line.count("}")
    return found


# How a reference to each kind of name looks: a type anywhere; a function called without a
# receiver; a global without a receiver and not as an argument label; a member after a dot.
REFERENCE = {
    "type": r"\b{}\b",
    "func": r"(?<![.\w])(?<!case )(?<!func ){}\s*\(",
    "global": r"(?<![.\w]){}\b(?!\s*:)",
    "member": r"\.{}\b",
}


def main():
    files = sorted(SOURCES.rglob("*.swift"))
    texts = {f: strip(f.read_text()) for f in files}
    owner, types = {}, top_level_types(texts.values())
    for f in files:
        for key in declarations(texts[f], types):
            owner[key] = min(owner.get(key, len(LAYERS)), layer_of(f))
    if "--list" in sys.argv[1:]:
        for k, layer in enumerate(LAYERS):
            print(f"{layer or '(root)'}: {' '.join(sorted(n for (n, _), o in owner.items() if o == k))}")
        return 0
    patterns = [(re.compile(REFERENCE[kind].format(name)), name, o) for (name, kind), o in owner.items()]
    violations = []
    for f in files:
        k = layer_of(f)
        for number, line in enumerate(texts[f].splitlines(), 1):
            for pattern, name, o in patterns:
                if o > k and pattern.search(line):
                    violations.append(f"{f.relative_to(ROOT)}:{number}: {LAYERS[k] or '(root)'} uses {name} of {LAYERS[o]}")
    if violations:
        print("layering violations (docs/architecture.md):")
        print("\n".join(violations))
        return 1
    print(f"layering check: {len(files)} files in {len(LAYERS) - 1} layers, no reference upwards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
