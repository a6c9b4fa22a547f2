#!/usr/bin/env python3
"""Checks that docs/api.md documents every public name of every public header, and nothing else.

Operators and plugin authors read docs/api.md instead of eight headers, so a public name the
reference forgets is a name nobody learns about, and a name it keeps after the header dropped or
renamed it is a trap. This test reads the headers themselves and compares (python3 standard
library only, no compiler).

WHICH NAMES ARE PUBLIC (the extraction rule)
  For each header of HEADERS below, only its DECLARATIONS PART is read: the text before its
  `#if defined(..._IMPLEMENTATION)` section, with comments removed and backslash-continued lines
  joined. In it:
    - functions: every declaration that begins with a decoration macro, i.e. a name ending in
      `_API` that one of the headers #defines in its declarations part (PLG_API, PLGISO_API,
      PERS_API, PLG_CONTRACT_API, PERS_CONTRACT_API; the backends use persistence.h's
      PERS_API). The function name is the identifier before the first `(`. No prefix filter:
      whatever is declared that way is public.
    - typedef names (structs, enums, opaque handles, function-pointer types), and struct and
      enum tags, that start with the header's lower-case public prefix;
    - enum constants that start with the header's upper-case public prefix, including those an
      enum generates from an X-macro list (`PLG_RESULT_LIST(PLG_RESULT_ENUM_)` inside an enum
      body: the first argument of each `X(...)` entry of the list);
    - #define'd macros that start with the header's upper-case public prefix;
    - the members of a struct generated from an X-macro list (the persistence vtable, built from
      PERS_BACKEND_OPS): the first argument of each entry. They have no prefix, so they are only
      checked for presence.
  Excluded everywhere: the include guard, names ending in `_` (the headers' mark for helper
  macros and sentinels such as PLG_RESULT_ENUM_ and PLG_RESULT_COUNT_), names starting with an
  internal prefix (plgi_, PLGI_, plgisoi_, persi_, pmemi_, psqli_, predi_, ...), and everything
  in the implementation section.

WHAT IS CHECKED (one case per header, plus two)
  - per header: every public name appears in docs/api.md as a whole word (`pers_claim` counts,
    `pers_claimed` would not);
  - "extractor": each header yields a plausible number of names of each kind, and as many
    function names as there are declarations starting with the decoration macro, so the test
    cannot pass because it found nothing;
  - "stale": every word of docs/api.md that starts with a public prefix (plg_, plgiso_, pers_
    and their upper-case forms) is something a header declares: a public name above, a name
    used in the code of a declarations part (e.g. plg_library_entry_v1 in a macro body), or a
    compile-time option a header tests with #ifdef/#ifndef/defined() or #defines anywhere, its
    implementation section included (PLG_STATIC, PERS_MALLOC and its default PERS_FREE, ...).
    A word ending in `_`, such as `PERS_CAP_` in `PERS_CAP_*`, names a family and passes when
    some declared name starts with it.

Usage: python3 tests/structure/api_doc.py [-v]    (-v lists the names found per header)
Ends with "api_doc: N passed, N failed"; exit status 1 when a case failed.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOC = os.path.join(ROOT, "docs", "api.md")

# (header, lower-case public prefix, upper-case public prefix, least number of names expected).
# The floors sit somewhat below the counts when this test was written (186, 46, 166, 5, 8, 13,
# 22, 22): a parser that silently stops seeing a kind of declaration falls under them; removing
# a few names on purpose does not.
HEADERS = [
    ("plugin_registry.h", "plg_", "PLG_", 160),
    ("plugin_isolation.h", "plgiso_", "PLGISO_", 40),
    ("persistence.h", "pers_", "PERS_", 140),
    ("backends/memory.h", "pers_memory_", "PERS_MEMORY_", 4),
    ("backends/sqlite.h", "pers_sqlite_", "PERS_SQLITE_", 6),
    ("backends/redis.h", "pers_redis_", "PERS_REDIS_", 10),
    ("tests/contract/plugin_contract.h", "plg_contract_", "PLG_CONTRACT_", 18),
    ("tests/contract/persistence_contract.h", "pers_contract_", "PERS_CONTRACT_", 18),
]
# Prefixes of internal names; a name starting with one is never public.
INTERNAL_RE = re.compile(r"^(?:plgi_|plgisoi_|persi_|pmemi_|psqli_|predi_|pcti_|plgci_|"
                         r"PLGI_|PLGISOI_|PERSI_|PMEMI_|PSQLI_|PREDI_)", re.I)
# Words of docs/api.md that claim to be library names.
PREFIXED_WORD_RE = re.compile(r"(?<![A-Za-z0-9_])(?:plgiso|plg|pers|PLGISO|PLG|PERS)_[A-Za-z0-9_]*")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def case(self, name, problems, detail=""):
        if problems:
            self.failed += 1
            print("FAIL %s" % name)
            for p in problems:
                print("    %s" % p)
        else:
            self.passed += 1
            print("ok   %s%s" % (name, (": " + detail) if detail else ""))


# ---------------------------------------------------------------------------------------------
# Reading a header
# ---------------------------------------------------------------------------------------------

def strip_comments(text):
    """Removes /* */ and // comments; keeps string and character literals and line breaks."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end
            out.append(" " + "\n" * text.count("\n", i, end))
            i = end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def declarations_part(text):
    m = re.search(r"^[ \t]*#[ \t]*if[ \t]+defined[ \t]*\([ \t]*\w+_IMPLEMENTATION[ \t]*\)", text,
                  re.M)
    return text[:m.start()] if m else text


def balanced(text, start):
    """Index just past the parenthesis, bracket or brace group opening at text[start]."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    i = start
    while i < len(text):
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < len(text) and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return len(text)


def split_args(inner):
    """Splits a macro argument list at commas outside parentheses."""
    args, depth, cur = [], 0, []
    for c in inner:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    args.append("".join(cur).strip())
    return args


class Header:
    """The public names of one header's declarations part."""

    def __init__(self, rel, lower, upper):
        self.rel = rel
        self.lower = lower
        self.upper = upper
        path = os.path.join(ROOT, rel)
        with open(path, encoding="utf-8") as f:
            self.full_text = f.read()
        self.full_code = strip_comments(self.full_text)
        code = strip_comments(declarations_part(self.full_text)).replace("\\\n", " ")
        self.code = code
        lines = code.split("\n")
        self.directives = [l.strip() for l in lines if l.strip().startswith("#")]
        # C text without preprocessor lines, for statements; the `extern "C" {` of C++ builds
        # is dropped (its closing brace, alone at the top level, is then ignored).
        self.c_text = re.sub(r'extern\s+"C"\s*\{', " ", "\n".join(
            l for l in lines if not l.strip().startswith("#")))
        self.guard = self._guard()
        self.macros = {}        # name -> (params or None, body)
        self.functions = set()
        self.types = set()
        self.constants = set()
        self.members = set()    # X-macro generated struct members
        self.api_macros = set()
        self.api_declarations = 0
        self._read_macros()

    def _guard(self):
        m = re.search(r"^\s*#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\b", self.code, re.M)
        return m.group(1) if m else None

    def _read_macros(self):
        for d in self.directives:
            m = re.match(r"#\s*define\s+(\w+)(\(([^)]*)\))?\s*(.*)$", d)
            if not m:
                continue
            params = [p.strip() for p in m.group(3).split(",")] if m.group(2) else None
            # The first definition wins (#ifndef defaults come first, the same text anyway).
            self.macros.setdefault(m.group(1), (params, m.group(4)))
        self.own_api_macros = {n for n in self.macros if n.endswith("_API")}

    def xlist_first_args(self, list_name):
        """First argument of every X(...) entry of the X-macro list `list_name`."""
        params, body = self.macros.get(list_name, (None, ""))
        if not params:
            return []
        x = params[0]
        names = []
        for m in re.finditer(r"(?<![A-Za-z0-9_])%s\s*\(" % re.escape(x), body):
            open_at = m.end() - 1
            close_at = balanced(body, open_at)
            args = split_args(body[open_at + 1:close_at - 1])
            if args and IDENT_RE.fullmatch(args[0]):
                names.append(args[0])
        return names

    def _statements(self):
        """Top-level statements of the C text (split at ';' outside groups)."""
        text, out, start, i = self.c_text, [], 0, 0
        while i < len(text):
            c = text[i]
            if c in "([{":
                i = balanced(text, i)
                continue
            if c in "\"'":
                j = i + 1
                while j < len(text) and text[j] != c:
                    j += 2 if text[j] == "\\" else 1
                i = j + 1
                continue
            if c == ";" or c == "}":
                if c == ";":
                    out.append(text[start:i].strip())
                    start = i + 1
            i += 1
        return [" ".join(s.split()) for s in out if s.strip()]

    def read_statements(self, api_macros):
        """Functions and types; api_macros: the decoration macros of every header (a backend
        declares its functions with persistence.h's PERS_API)."""
        self.api_macros = api_macros
        for st in self._statements():
            first = IDENT_RE.match(st)
            if first and first.group(0) in self.api_macros:
                self.api_declarations += 1
                m = re.match(r"\w+\s+[^(]*?([A-Za-z_]\w*)\s*\(", st)
                if m:
                    self.functions.add(m.group(1))
                continue
            if st.startswith("typedef"):
                self._read_typedef(st)

    def _read_typedef(self, st):
        body_at = st.find("{")
        head = st if body_at < 0 else st[:body_at]
        tail = "" if body_at < 0 else st[balanced(st, body_at):]
        for m in re.finditer(r"\b(struct|enum)\s+([A-Za-z_]\w*)", head):
            self.types.add(m.group(2))
        fp = re.search(r"\(\s*\*\s*([A-Za-z_]\w*)\s*\)", st if body_at < 0 else tail)
        if fp:
            self.types.add(fp.group(1))
        else:
            names = IDENT_RE.findall(re.sub(r"\[[^\]]*\]", "", tail if body_at >= 0 else head))
            if names:
                self.types.add(names[-1])
        if body_at >= 0:
            body = st[body_at + 1:balanced(st, body_at) - 1]
            kind = "enum" if re.match(r"typedef\s+enum\b", st) else "struct"
            self._read_body(kind, body)

    def _read_body(self, kind, body):
        # X-macro list expansions: LIST(ELEMENT) where LIST is a function-like macro whose one
        # parameter is called for each entry.
        for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(\s*([A-Za-z_]\w*)\s*\)", body):
            params = self.macros.get(m.group(1), (None, ""))[0]
            if params and len(params) == 1:
                names = self.xlist_first_args(m.group(1))
                (self.constants if kind == "enum" else self.members).update(names)
        if kind == "enum":
            stripped = re.sub(r"\b[A-Za-z_]\w*\s*\(\s*[A-Za-z_]\w*\s*\)", "", body)
            for item in split_args(stripped):
                m = re.match(r"([A-Za-z_]\w*)", item)
                if m:
                    self.constants.add(m.group(1))

    # -- the rule --------------------------------------------------------------------------

    def public(self, name, prefix):
        return (name.startswith(prefix) and not name.endswith("_") and name != self.guard and
                not INTERNAL_RE.match(name))

    def public_names(self):
        """{name: kind} of every public name."""
        out = {}
        for n in sorted(self.macros):
            if self.public(n, self.upper):
                out[n] = "macro"
        for n in sorted(self.constants):
            if self.public(n, self.upper):
                out[n] = "enum constant"
        for n in sorted(self.types):
            if self.public(n, self.lower):
                out[n] = "type"
        for n in sorted(self.functions):
            if not n.endswith("_") and not INTERNAL_RE.match(n):
                out[n] = "function"
        for n in sorted(self.members):
            out.setdefault(n, "vtable member")
        return out

    def declared_words(self):
        """Every identifier of the declarations code, and every option the header tests."""
        words = set(IDENT_RE.findall(self.code))
        for m in re.finditer(r"#\s*(?:ifn?def|define)\s+(\w+)|defined\s*\(?\s*(\w+)",
                             self.full_code):
            words.add(m.group(1) or m.group(2))
        return words


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------

def word_present(word, text):
    return re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(word), text) is not None


def main():
    verbose = "-v" in sys.argv[1:]
    rep = Report()
    try:
        with open(DOC, encoding="utf-8") as f:
            doc = f.read()
    except OSError as e:
        print("FAIL docs/api.md: cannot read it: %s" % e)
        print("api_doc: 0 passed, 1 failed")
        return 1

    headers = []
    for rel, lower, upper, least in HEADERS:
        try:
            headers.append((Header(rel, lower, upper), least))
        except OSError as e:
            rep.case(rel, ["cannot read the header: %s" % e])
    api_macros = set()
    for h, least in headers:
        api_macros |= h.own_api_macros
    for h, least in headers:
        h.read_statements(api_macros)
    all_public = set()
    declared = set()
    summary = []
    for h, least in headers:
        names = h.public_names()
        all_public.update(names)
        declared.update(h.declared_words())
        missing = ["%s (%s) is not in docs/api.md" % (n, k) for n, k in sorted(names.items())
                   if not word_present(n, doc)]
        kinds = {}
        for k in names.values():
            kinds[k] = kinds.get(k, 0) + 1
        detail = "%d names documented (%s)" % (
            len(names), ", ".join("%d %ss" % (v, k) for k, v in sorted(kinds.items())))
        rep.case(h.rel, missing, detail)
        summary.append((h, names, kinds, least))
        if verbose:
            for n, k in sorted(names.items()):
                print("      %-14s %s" % (k, n))

    # The extractor found what a header of this library must have.
    problems = []
    for h, names, kinds, least in summary:
        if len(names) < least:
            problems.append("%s: only %d public names found, expected at least %d (did the "
                            "declarations part or the decoration macro change?)"
                            % (h.rel, len(names), least))
        for kind in ("function", "macro"):
            if kinds.get(kind, 0) == 0:
                problems.append("%s: no %s found" % (h.rel, kind))
        if len(h.functions) != h.api_declarations:
            problems.append("%s: %d declarations start with a decoration macro but %d function "
                            "names were read" % (h.rel, h.api_declarations, len(h.functions)))
        if h.guard is None:
            problems.append("%s: no include guard found" % h.rel)
    expect = {
        "plugin_registry.h": ["plg_registry_create", "plg_result", "PLG_OK", "PLG_API",
                              "plg_descriptor", "PLG_ERR_UNHEALTHY"],
        "persistence.h": ["pers_open", "pers_backend_vtable", "PERS_OK", "PERS_BACKEND_OPS",
                          "open_store", "claim", "expire_subscriptions", "PERS_STATE_DEAD"],
        "plugin_isolation.h": ["plgiso_open", "PLGISO_ERR_INTERNAL", "plgiso_vtable"],
        "backends/redis.h": ["pers_redis_register", "pers_redis_endpoint"],
    }
    if not api_macros:
        problems.append("no header #defines a decoration macro (*_API)")
    by_rel = {h.rel: names for h, names, kinds, least in summary}
    for rel, wanted in expect.items():
        for w in wanted:
            if w not in by_rel.get(rel, {}):
                problems.append("%s: the extractor missed %s" % (rel, w))
    rep.case("extractor", problems, "; ".join(
        "%s %d" % (h.rel, len(names)) for h, names, kinds, least in summary))

    # Nothing in docs/api.md claims a name no header has.
    stale = {}
    for m in PREFIXED_WORD_RE.finditer(doc):
        w = m.group(0)
        if w in all_public or w in declared:
            continue
        if w.endswith("_") and any(n.startswith(w) for n in all_public | declared):
            continue
        line = doc.count("\n", 0, m.start()) + 1
        stale.setdefault(w, line)
    rep.case("stale", ["docs/api.md:%d: %s is declared by no header" % (line, w)
                       for w, line in sorted(stale.items(), key=lambda x: x[1])])

    print("api_doc: %d passed, %d failed" % (rep.passed, rep.failed))
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
