#!/bin/bash
# hack/lint-size.sh: the size rules of issue 11 — no library file over 800 lines, no function
# over 80 lines. Integration tests (a crate's tests/ directory) are exempt from the file rule
# only. Prints each offender as path:line and exits 1 when there is one. LINT_MAX_FN=N shows
# the functions over N lines instead (to see what comes close).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null; then
    echo "hack/lint-size.sh: installing python3-minimal"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null
fi
exec python3 - "$@" <<'PY'
import os, re, sys

MAX_FILE = 800
MAX_FN = int(os.environ.get("LINT_MAX_FN", 80))
ROOTS = ["runtime/src", "spec-tests/src", "spec-tests/tests", "spec-tests/probe/src",
         "hack/cri-lane/src"]
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?((const|async|unsafe|extern\s+"[^"]*")\s+)*fn\s+(\w+)')

def code_only(text):
    """Blank out comments, strings and char literals so that only code braces remain."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i): depth, i = depth + 1, i + 2
                elif text.startswith("*/", i): depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n": out.append("\n")
                    i += 1
        elif re.match(r'b?r#*"', text[i:i + 12]) and (i == 0 or not (text[i-1].isalnum() or text[i-1] == "_")):
            m = re.match(r'(b?r)(#*)"', text[i:])
            end = '"' + m.group(2)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append("\n" * text.count("\n", i, j)); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j + 1)); i = j + 1
        elif c == "'":
            m = re.match(r"'(\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:])
            if m: i += len(m.group(0))
            else: out.append(c); i += 1
        else:
            out.append(c); i += 1
    return "".join(out)

def long_fns(lines):
    for k, line in enumerate(lines):
        m = FN.match(line)
        if not m: continue
        depth, opened = 0, False
        for e in range(k, len(lines)):
            for ch in lines[e]:
                if ch == "{": depth, opened = depth + 1, True
                elif ch == "}": depth -= 1
                elif ch == ";" and not opened and depth == 0: break
            else:
                if opened and depth == 0: break
                continue
            break
        if opened and e - k + 1 > MAX_FN:
            yield k + 1, m.group(5), e - k + 1

bad = 0
for root in ROOTS:
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if not f.endswith(".rs"): continue
            path = os.path.join(dirpath, f)
            text = open(path, encoding="utf-8").read()
            nlines = text.count("\n")
            integration = "/tests/" in path and not path.startswith(("runtime/src", "spec-tests/src"))
            if nlines > MAX_FILE and not integration:
                print(f"{path}:1: {nlines} lines (max {MAX_FILE})"); bad += 1
            for line, name, size in long_fns(code_only(text).split("\n")):
                print(f"{path}:{line}: fn {name} is {size} lines (max {MAX_FN})"); bad += 1
sys.exit(1 if bad else 0)
PY
