#!/usr/bin/env python3
"""Unit tests of gen/scaffold.py: name validation, refusal to overwrite, --force, --dry-run,
idempotence, --list and --help, the agreement of the templates with PERS_BACKEND_OPS in
persistence.h (at the Python level, and by compiling generated code against a changed header),
and the docs generator on tests/gen/sample_registry.json.

    python3 tests/gen/test_scaffold.py [-k PATTERN]

tests/gen/sample_registry.json is what plg_registry_describe_json wrote for a program that
registers the memory backend, the example plugins greeter and counter, and a plugin with every
kind of key, a dependency and text that needs escaping in Markdown.

Ends with "test_scaffold: N passed, N failed" for tests/run.sh (skipped tests count as neither;
the compile tests are skipped when no C compiler is found). Python 3 standard library + jinja2.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(ROOT, "gen", "scaffold.py")
SAMPLE = os.path.join(HERE, "sample_registry.json")
sys.path.insert(0, os.path.join(ROOT, "gen"))
sys.dont_write_bytecode = True  # no __pycache__ left in gen/

import scaffold  # noqa: E402

CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def run(*args, cwd=None, stdin=None):
    p = subprocess.run([sys.executable, SCRIPT] + list(args), cwd=cwd, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def tree(d):
    """{relative path: bytes} of every file under d."""
    out = {}
    for base, _, files in os.walk(d):
        for f in files:
            path = os.path.join(base, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, d)] = fh.read()
    return out


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="scaffold-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def out(self, *parts):
        return os.path.join(self.tmp, *parts)


# ------------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------------

class NameValidation(TempDirTest):
    REFUSED = [
        ("", "empty"),
        ("9lives", "starts with a digit"),
        ("my-store", "'-' is not allowed"),
        ("my store", "' ' is not allowed"),
        ("caf\u00e9", "is not allowed"),
        ("int", "C keyword"),
        ("while", "C keyword"),
        ("_Bool", "C keyword"),
        ("typeof", "C keyword"),
        ("class", "C++ keyword"),
        ("and", "C++ keyword"),
        ("namespace", "C++ keyword"),
        ("_Store", "underscore and a capital"),
        ("__store", "underscore and a capital letter or a second underscore"),
        ("_store", "begin with an underscore"),
        ("my__store", "double underscore"),
        ("store_", "ends with '_'"),
        ("plg", "library's prefix plg_"),
        ("plg_cache", "library's prefix plg_"),
        ("PLG_Cache", "library's prefix plg_"),
        ("pers", "library's prefix pers_"),
        ("pers_queue", "library's prefix pers_"),
        ("persistence", "library's prefix persistence_"),
        ("plugin_x", "library's prefix plugin_"),
        ("pmem", "internal prefix pmemi_"),
        ("plgi_x", "internal prefix plgi_"),
        ("pcti", "internal prefix pcti_"),
        ("memory", "library's own persistence providers"),
        ("sqlite", "library's own persistence providers"),
        ("a" * 37, "at most 36"),
    ]
    ACCEPTED = ["mystore", "my_store2", "Store", "x", "s3", "a" * 36, "plugins", "persist"]

    def test_accepts_ordinary_names(self):
        for name in self.ACCEPTED:
            with self.subTest(name=name):
                self.assertIsNone(scaffold.check_name(name, ROOT, "backend"))

    def test_refuses_each_with_its_reason(self):
        for name, why in self.REFUSED:
            with self.subTest(name=name):
                reason = scaffold.check_name(name, ROOT, "backend")
                self.assertIsNotNone(reason, name)
                self.assertIn(why, reason)

    def test_library_provider_names_are_only_refused_for_providers(self):
        self.assertIsNone(scaffold.check_name("memory", ROOT, "plugin"))
        self.assertIsNotNone(scaffold.check_name("memory", ROOT, "middleware"))

    def test_internal_prefixes_are_found_in_the_headers(self):
        found = scaffold.library_prefixes(ROOT)
        for p in ("plg_", "pers_", "plgi_", "persi_", "pmemi_", "plgci_", "pcti_"):
            self.assertIn(p, found)

    def test_cli_refusal_says_why_and_writes_nothing(self):
        for kind, name, why in (("backend", "int", "C keyword"),
                                ("middleware", "_Trace", "underscore and a capital"),
                                ("plugin", "pers_x", "library's prefix")):
            with self.subTest(kind=kind, name=name):
                args = [kind, name, "--out", self.tmp] + (["--type", "t"] if kind == "plugin" else [])
                rc, out, err = run(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn('refused name "%s"' % name, err)
                self.assertIn(why, err)
                self.assertEqual(tree(self.tmp), {})

    def test_missing_name(self):
        rc, _, err = run("backend", "--out", self.tmp)
        self.assertEqual(rc, 2)
        self.assertIn("NAME is required", err)

    def test_plugin_type(self):
        for ptype, why in ((None, "--type TYPE is required"), ("bad type", "not a valid registry"),
                           ("-x", "not a valid registry"), ("persistence", "scaffold.py backend")):
            with self.subTest(ptype=ptype):
                args = ["plugin", "notify", "--out", self.tmp]
                if ptype is not None:
                    args += ["--type=" + ptype]
                rc, _, err = run(*args)
                self.assertEqual(rc, 2, err)
                self.assertIn("refused --type", err)
                self.assertIn(why, err)
        rc, _, err = run("plugin", "notify", "--type", "notifier.v2-x", "--out", self.tmp)
        self.assertEqual(rc, 0, err)

    def test_potentially_reserved_names_are_generated_with_a_note(self):
        rc, _, err = run("backend", "tokyo", "--out", self.tmp)
        self.assertEqual(rc, 0, err)
        self.assertIn("note", err)
        self.assertIn("potentially reserved", err)
        rc, _, err = run("backend", "etcd", "--out", self.tmp)
        self.assertEqual(rc, 0, err)
        self.assertIn("<errno.h>", err)

    def test_a_provider_name_used_by_the_other_kind_is_refused(self):
        self.assertEqual(run("backend", "store", "--out", self.tmp)[0], 0)
        rc, _, err = run("middleware", "store", "--out", self.tmp)
        self.assertEqual(rc, 2)
        self.assertIn("already defines a persistence provider", err)


# ------------------------------------------------------------------------------------------------
# Writing: --dry-run, refusal, --force, idempotence, --list, --help
# ------------------------------------------------------------------------------------------------

KINDS = [("backend", "mystore", []), ("plugin", "notify", ["--type", "notifier"]),
         ("middleware", "tracer", [])]


class Writing(TempDirTest):
    def gen(self, kind, name, extra, *more):
        return run(kind, name, "--out", self.tmp, *(list(extra) + list(more)))

    def test_dry_run_writes_nothing(self):
        for kind, name, extra in KINDS:
            with self.subTest(kind=kind):
                rc, out, err = self.gen(kind, name, extra, "--dry-run")
                self.assertEqual(rc, 0, err)
                self.assertIn("would create", out)
                self.assertIn("dry run: nothing written", out)
                for _, dst, _ in scaffold.KINDS[kind]["files"]:
                    self.assertIn(dst.format(name=name), out)
                self.assertEqual(tree(self.tmp), {})

    def test_refuses_to_overwrite_and_writes_nothing_then(self):
        rc, _, err = self.gen("backend", "mystore", [])
        self.assertEqual(rc, 0, err)
        header = self.out("backends", "mystore.h")
        test = self.out("tests", "test_mystore_backend.c")
        with open(header, "a") as f:
            f.write("/* my work */\n")
        os.unlink(test)
        rc, out, err = self.gen("backend", "mystore", [])
        self.assertEqual(rc, 1)
        self.assertIn("refused", err)
        self.assertIn(header, err)
        self.assertIn("--force", err)
        with open(header) as f:
            self.assertTrue(f.read().endswith("/* my work */\n"))
        self.assertFalse(os.path.exists(test), "all or nothing: the missing file was written")
        rc, out, _ = self.gen("backend", "mystore", [], "--dry-run")
        self.assertEqual(rc, 1)
        self.assertIn("exists and differs: would refuse", out)

    def test_force_overwrites(self):
        self.assertEqual(self.gen("backend", "mystore", [])[0], 0)
        fresh = tree(self.tmp)
        header = self.out("backends", "mystore.h")
        with open(header, "w") as f:
            f.write("edited\n")
        rc, out, _ = self.gen("backend", "mystore", [], "--force", "--dry-run")
        self.assertEqual(rc, 0)
        self.assertIn("would overwrite (--force)", out)
        with open(header) as f:
            self.assertEqual(f.read(), "edited\n")
        rc, out, err = self.gen("backend", "mystore", [], "--force")
        self.assertEqual(rc, 0, err)
        self.assertIn("overwrote", out)
        self.assertEqual(tree(self.tmp), fresh)

    def test_second_run_is_byte_identical(self):
        other = tempfile.mkdtemp(prefix="scaffold-test-b-")
        try:
            for kind, name, extra in KINDS:
                self.assertEqual(self.gen(kind, name, extra)[0], 0)
                self.assertEqual(run(kind, name, "--out", other, *extra)[0], 0)
            first = tree(self.tmp)
            self.assertEqual(len(first), 6)
            self.assertEqual(first, tree(other))
            for kind, name, extra in KINDS:
                rc, out, err = self.gen(kind, name, extra)
                self.assertEqual(rc, 0, err)
                self.assertIn("unchanged", out)
                self.assertNotIn("wrote", out)
                self.assertEqual(self.gen(kind, name, extra, "--force")[0], 0)
            self.assertEqual(tree(self.tmp), first)
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_no_timestamps_or_machine_paths(self):
        for kind, name, extra in KINDS:
            self.assertEqual(self.gen(kind, name, extra)[0], 0)
        for rel, data in tree(self.tmp).items():
            text = data.decode("utf-8")
            with self.subTest(file=rel):
                self.assertIn(scaffold.GENERATED_MARKER, text)
                self.assertIsNone(re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", text))
                self.assertIsNone(re.search(r"\b\d\d:\d\d:\d\d\b", text))
                self.assertNotIn(self.tmp, text)
                self.assertNotIn(ROOT, text)
                self.assertNotIn("\t", text)
                self.assertFalse(re.search(r"[ \t]+$", text, re.M), "trailing whitespace")

    def test_lines_fit_in_100_columns_for_names_up_to_16_characters(self):
        for kind, name, extra in (("backend", "s", []), ("backend", "orders_store_abc", []),
                                  ("middleware", "m", []), ("middleware", "orders_trace_abc", []),
                                  ("plugin", "p", ["--type", "t"]),
                                  ("plugin", "smtp_notifier_ab", ["--type", "notifier_v2_ab.c"])):
            self.assertEqual(self.gen(kind, name, extra)[0], 0)
        for rel, data in tree(self.tmp).items():
            lines = data.decode("utf-8").split("\n")
            long_lines = [i + 1 for i, l in enumerate(lines) if len(l) > 100]
            self.assertEqual(long_lines, [], "%s: lines longer than 100 columns" % rel)

    def test_includes_are_relative_inside_the_library_and_by_path_outside(self):
        lib = self.out("lib")
        os.makedirs(lib)
        for h in ("persistence.h", "plugin_registry.h"):
            shutil.copy(os.path.join(ROOT, h), lib)
        rc, _, err = run("backend", "mystore", "--library", lib, "--out", lib)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(lib, "backends", "mystore.h")) as f:
            self.assertIn('#include "../persistence.h"', f.read())
        rc, _, err = run("plugin", "notify", "--type", "n", "--library", lib, "--out", lib)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(lib, "plugins", "notify.h")) as f:
            self.assertIn('#include "../plugin_registry.h"', f.read())
        rc, _, err = run("backend", "mystore", "--library", lib, "--out", self.out("proj"))
        self.assertEqual(rc, 0, err)
        with open(self.out("proj", "backends", "mystore.h")) as f:
            text = f.read()
        self.assertIn('#include "persistence.h"', text)
        self.assertNotIn("../persistence.h", text)

    def test_list(self):
        rc, out, err = run("--list")
        self.assertEqual(rc, 0, err)
        for kind in scaffold.KINDS:
            for src, dst, _ in scaffold.KINDS[kind]["files"]:
                self.assertIn("templates/" + src, out)
                self.assertIn(dst, out)
                self.assertTrue(os.path.isfile(os.path.join(ROOT, "templates", src)), src)
        rc, out, err = run("backend", "--list")
        self.assertEqual(rc, 0, err)
        self.assertIn("backends/{name}.h", out)
        self.assertNotIn("plugins/{name}.h", out)
        self.assertEqual(run("docs", "--list")[0], 0)

    def test_help_on_every_command(self):
        for args in ([], ["backend"], ["plugin"], ["middleware"], ["docs"]):
            with self.subTest(args=args):
                rc, out, _ = run(*(args + ["--help"]))
                self.assertEqual(rc, 0)
                self.assertIn("usage:", out)
                for opt in ("--list",) if not args else ("--out", "--dry-run", "--force",
                                                          "--list"):
                    self.assertIn(opt, out)

    def test_no_command_prints_help(self):
        rc, out, _ = run()
        self.assertEqual(rc, 2)
        self.assertIn("usage:", out)


# ------------------------------------------------------------------------------------------------
# The vtable: parsed from PERS_BACKEND_OPS, rendered in full, checked by the compiler
# ------------------------------------------------------------------------------------------------

def header_ops_by_regex(path):
    """An independent reading of the list: the first word of every X( line of the macro."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"#define PERS_BACKEND_OPS\(X\)(.*?)\n(?![^\n]*\\$)[^\n]*\n", text, re.S)
    body = text[m.start():]
    names = []
    for line in body.split("\n"):
        mm = re.match(r"\s*X\((\w+),", line)
        if mm:
            names.append(mm.group(1))
        if not line.rstrip().endswith("\\") and names:
            break
    return names


def rendered_methods(text, prefix):
    """{method: parameter list} of every `static T prefix<method>(...)` definition."""
    out = {}
    flat = re.sub(r"\s+", " ", text)
    for m in re.finditer(r"static [\w\s\*]+?\b" + re.escape(prefix) + r"(\w+)\(([^)]*)\) \{", flat):
        out[m.group(1)] = [scaffold.normalize_space(a) for a in m.group(2).split(",")]
    return out


class VtableAgreement(TempDirTest):
    def setUp(self):
        TempDirTest.setUp(self)
        self.header = os.path.join(ROOT, "persistence.h")
        self.ops = scaffold.parse_backend_ops(self.header)

    def test_every_entry_of_the_list_is_parsed(self):
        names = [op.name for op in self.ops]
        self.assertEqual(names, header_ops_by_regex(self.header))
        for op in self.ops:
            self.assertTrue(op.params, op.name)
        ops = dict((op.name, op) for op in self.ops)
        self.assertTrue(ops["enqueue"].required)
        self.assertEqual(ops["queue_stats"].cap, "PERS_CAP_STATS")
        self.assertIn("S17", ops["queue_stats"].doc)
        self.assertEqual(ops["close_store"].ret, "void")

    def test_rendered_methods_are_exactly_the_parsed_operations(self):
        for kind, name in (("backend", "mystore"), ("middleware", "tracer")):
            with self.subTest(kind=kind):
                files = dict(scaffold.render_kind(kind, name, None, ROOT, self.tmp))
                text = files["%s/%s.h" % ("backends" if kind == "backend" else "middleware",
                                          name)]
                methods = rendered_methods(text, name + "i_")
                parsed = dict((op.name, [p.decl for p in op.params]) for op in self.ops)
                rendered = dict((k, v) for k, v in methods.items() if k in parsed)
                self.assertEqual(set(rendered), set(parsed))
                for op_name, params in parsed.items():
                    self.assertEqual(rendered[op_name], params, op_name)
                checks = re.findall(r"^%sI_SAME_TYPE_\((\w+)\);$" % name.upper(), text, re.M)
                self.assertEqual(checks, [op.name for op in self.ops])
                self.assertIn("PERS_BACKEND_OPS(%sI_VTABLE_ENTRY_)" % name.upper(), text)

    def test_backend_stubs_and_middleware_forwarders(self):
        files = dict(scaffold.render_kind("backend", "mystore", None, ROOT, self.tmp))
        text = files["backends/mystore.h"]
        for op in self.ops:
            if op.handwritten:
                continue
            self.assertIn('return mystorei_todo(detail, "%s");' % op.name, text)
            self.assertIn("TODO(%s" % ("required" if op.required else "optional, " + op.cap),
                          text)
        files = dict(scaffold.render_kind("middleware", "tracer", None, ROOT, self.tmp))
        text = files["middleware/tracer.h"]
        for op in self.ops:
            if not op.handwritten:
                self.assertIn("rc = s->b->vt.%s(s->inner" % op.name, text)
                self.assertIn("traceri_hook_before(s, &call, TRACERI_OP_%s);" % op.name, text)

    @unittest.skipIf(CC is None, "no C compiler")
    def test_generated_code_fails_to_compile_when_the_header_changes(self):
        lib = self.out("lib")
        os.makedirs(lib)
        shutil.copy(os.path.join(ROOT, "plugin_registry.h"), lib)
        shutil.copy(self.header, lib)
        for kind, name, sub in (("backend", "mystore", "backends"),
                                ("middleware", "tracer", "middleware")):
            with self.subTest(kind=kind):
                old = self.out("old-" + kind)
                self.assertEqual(run(kind, name, "--library", lib, "--out", old)[0], 0)
                self.assertEqual(self.compile(lib, old, sub, name), (0, ""))
                for change, member in (("append", "fake_op"), ("retype", "extend_lease"),
                                       ("remove", "health")):
                    with self.subTest(change=change):
                        self.mutate(lib, change)
                        rc, err = self.compile(lib, old, sub, name)
                        self.assertNotEqual(rc, 0, "%s: the old skeleton still compiles" % change)
                        self.assertIn(member, err)
                        new = self.out("new-%s-%s" % (kind, change))
                        rc, _, e = run(kind, name, "--library", lib, "--out", new)
                        self.assertEqual(rc, 0, e)
                        self.assertEqual(self.compile(lib, new, sub, name), (0, ""))
                        ops = [op.name for op in
                               scaffold.parse_backend_ops(os.path.join(lib, "persistence.h"))]
                        self.assertEqual(member in ops, change != "remove")
                        shutil.copy(self.header, lib)

    def mutate(self, lib, change):
        path = os.path.join(lib, "persistence.h")
        with open(path) as f:
            text = f.read()
        if change == "append":
            # After the list's last entry, whichever it is (it grows with each ABI version).
            text, n = re.subn(r"(\n    X\([a-z_]+, [01], [^\n]*\))\n",
                              "\\1 \\\\\n    X(fake_op, 0, 1, 0, pers_result, (void *backend, "
                              "const char *tenant, pers_detail *detail))\n", text)
        elif change == "retype":
            text, n = re.subn(r"(X\(extend_lease,[^\n]*)int64_t lease_ms",
                              "\\1uint64_t lease_ms", text)
        else:
            text, n = re.subn(r"\n    X\(health,[^\n]*\n", "\n", text)
        self.assertEqual(n, 1, change)
        with open(path, "w") as f:
            f.write(text)

    def compile(self, lib, out, sub, name):
        tu = os.path.join(out, "tu.c")
        with open(tu, "w") as f:
            f.write("#define PERSISTENCE_%s_IMPLEMENTATION\n#include \"%s/%s.h\"\n"
                    % (name.upper(), sub, name))
        p = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                            "-fsyntax-only", "-I" + out, "-I" + lib, tu],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        return p.returncode, p.stdout

    def test_parser_is_strict(self):
        with open(self.header) as f:
            base = f.read()
        cases = [
            (lambda t: t.replace("#define PERS_BACKEND_OPS(X)", "#define PERS_BACKEND_LIST(X)"),
             "no \"#define PERS_BACKEND_OPS(X)\""),
            (lambda t: t.replace("    X(health, 0, 1,", "    Y(health, 0, 1,"),
             "expected one X("),
            (lambda t: t.replace("X(health, 0, 1, PERS_CAP_HEALTH, pers_result,",
                                 "X(health, 0, 1, pers_result,"), "has 5 fields"),
            (lambda t: t.replace("X(health, 0, 1,", "X(health, 2, 1,"), "required must be 0 or 1"),
            (lambda t: t.replace("X(health, 0, 1,", "X(health, 0, x,"), "abi_added"),
            (lambda t: t.replace("X(health, 0, 1, PERS_CAP_HEALTH", "X(health, 0, 1, CAP"),
             "cap must be 0 or a PERS_CAP_"),
            (lambda t: t.replace("X(health, 0, 1, PERS_CAP_HEALTH", "X(health, 0, 1, PERS_CAP_NOPE"),
             "PERS_CAP_NOPE, which is not #defined"),
            (lambda t: t.replace("X(abandon,", "X(health,"), "listed twice"),
            (lambda t: t.replace("(void *backend, pers_detail *detail)) \\",
                                 "(void *, pers_detail *detail)) \\"), "has no name"),
            (lambda t: t.replace("X(open_store,", "X(open_it,"), "has no \"open_store\""),
            (lambda t: t.replace("X(get_task, 1, 1, 0, pers_result, (void *backend,",
                                 "X(get_task, 1, 1, 0, pers_result, (void *handle,"),
             "must be \"void *backend\""),
            (lambda t: t.replace("X(get_task, 1, 1, 0, pers_result,", "X(get_task, 1, 1, 0, int,"),
             "get_task returns int"),
        ]
        for mutate, message in cases:
            with self.subTest(message=message):
                text = mutate(base)
                self.assertNotEqual(text, base, message)
                path = self.out("persistence.h")
                with open(path, "w") as f:
                    f.write(text)
                with self.assertRaises(scaffold.ScaffoldError) as ctx:
                    ops = scaffold.parse_backend_ops(path)
                    scaffold.parse_capabilities(path, ops)
                self.assertIn(message, str(ctx.exception))
                self.assertEqual(ctx.exception.status, scaffold.EXIT_PARSE)

    def test_parse_error_exit_status(self):
        lib = self.out("lib")
        os.makedirs(lib)
        with open(os.path.join(lib, "persistence.h"), "w") as f:
            f.write("/* nothing */\n")
        rc, _, err = run("backend", "mystore", "--library", lib, "--out", self.out("o"))
        self.assertEqual(rc, 3)
        self.assertIn("PERS_BACKEND_OPS", err)
        self.assertFalse(os.path.exists(self.out("o")))


# ------------------------------------------------------------------------------------------------
# Docs
# ------------------------------------------------------------------------------------------------

class Docs(TempDirTest):
    def test_renders_the_sample(self):
        rc, out, err = run("docs", SAMPLE)
        self.assertEqual(rc, 0, err)
        with open(SAMPLE) as f:
            data = json.load(f)
        self.assertTrue(out.startswith("# Plugins\n"))
        for p in data["plugins"]:
            self.assertIn("### %s %s" % (p["name"].replace("_", "_"), p["version"]), out)
            self.assertIn('<a id="%s"></a>' % scaffold.md_anchor(p["type"], p["name"]), out)
            for k in p["config"]:
                self.assertIn("| `%s` | %s |" % (k["key"], k["type"]), out)
        self.assertIn("| `max_tasks` | integer | `0` | at least `0` | no | no | most tasks held "
                      "at once in any state; 0: no limit |", out)
        self.assertIn("| `sender` | string | none | `1` to `32` bytes long | yes | no |", out)
        self.assertIn("| `style` | string | `plain` | one of `plain`, `polite`, `loud` |", out)
        self.assertIn("| `api_key` | string | *set, not shown* | - | no | yes |", out)
        self.assertIn("- **Interface:** `persistence.backend`, ABI version 1", out)
        self.assertIn("- **Capabilities:** `greeting`, `i18n-ready`", out)
        self.assertIn("  - `greeter/greeter` `^1.0.0`", out)
        self.assertIn("  - `exporter/helper`, any version (optional)", out)
        self.assertIn("exports audit records \\| with a pipe", out)   # a pipe cannot end a cell
        self.assertIn("\\<b\\>", out)                                 # no raw HTML
        self.assertNotIn("<redacted>", out)
        # Grouped by type, in order.
        types = re.findall(r"^## Type `([^`]+)`$", out, re.M)
        self.assertEqual(types, sorted(set(p["type"] for p in data["plugins"])))

    def test_secret_defaults_never_appear_even_if_the_json_has_them(self):
        with open(SAMPLE) as f:
            data = json.load(f)
        data["plugins"][0]["config"].append({"key": "password", "type": "string",
                                             "secret": True, "default": "hunter2-leaked"})
        path = self.out("leaky.json")
        with open(path, "w") as f:
            json.dump(data, f)
        rc, out, err = run("docs", path)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("hunter2", out)
        self.assertIn("| `password` | string | *set, not shown* |", out)

    def test_deterministic_whatever_the_order(self):
        with open(SAMPLE) as f:
            data = json.load(f)
        data["plugins"].reverse()
        path = self.out("reversed.json")
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
        first = run("docs", SAMPLE)[1]
        self.assertEqual(run("docs", SAMPLE)[1], first)
        self.assertEqual(run("docs", path)[1], first)
        with open(SAMPLE) as f:
            self.assertEqual(run("docs", "-", stdin=f.read())[1], first)

    def test_out_dry_run_force(self):
        rc, out, _ = run("docs", SAMPLE, "--out", self.tmp, "--dry-run")
        self.assertEqual(rc, 0)
        self.assertIn("would create", out)
        self.assertEqual(tree(self.tmp), {})
        self.assertEqual(run("docs", SAMPLE, "--out", self.tmp)[0], 0)
        page = self.out("plugins.md")
        with open(page) as f:
            self.assertEqual(f.read(), run("docs", SAMPLE)[1])
        self.assertIn("unchanged", run("docs", SAMPLE, "--out", self.tmp)[1])
        with open(page, "w") as f:
            f.write("mine\n")
        rc, _, err = run("docs", SAMPLE, "--out", self.tmp)
        self.assertEqual(rc, 1)
        self.assertIn("refused", err)
        self.assertEqual(run("docs", SAMPLE, "--out", self.tmp, "--force")[0], 0)
        with open(page) as f:
            self.assertTrue(f.read().startswith("# Plugins"))

    def test_rejects_bad_input_with_the_place(self):
        cases = [
            ("not json", "is not valid JSON"),
            ('{"format": "other", "format_version": 1, "plugins": []}', 'expected "plugin-'),
            ('{"format": "plugin-registry-description", "format_version": 2, "plugins": []}',
             "format_version 2 is not supported"),
            ('{"format": "plugin-registry-description", "format_version": 1, "plugins": '
             '[{"type": "t", "version": "1.0.0"}]}', 'plugins[0]: missing "name"'),
            ('{"format": "plugin-registry-description", "format_version": 1, "plugins": '
             '[{"type": "t", "name": "n", "version": "1.0.0", "config": [{"key": "k", '
             '"type": "float"}]}]}', 'plugins[0].config[0].type: "float"'),
            ('{"format": "plugin-registry-description", "format_version": 1, "plugins": '
             '[{"type": "t", "name": "n", "version": "1.0.0", "capabilities": [1]}]}',
             "plugins[0].capabilities[0]: expected a string"),
        ]
        for text, message in cases:
            with self.subTest(message=message):
                path = self.out("bad.json")
                with open(path, "w") as f:
                    f.write(text)
                rc, out, err = run("docs", path)
                self.assertEqual(rc, 2, err)
                self.assertIn(message, err)
                self.assertEqual(out, "")
        rc, _, err = run("docs", self.out("missing.json"))
        self.assertEqual(rc, 2)
        self.assertIn("cannot read", err)

    def test_empty_registry(self):
        path = self.out("empty.json")
        with open(path, "w") as f:
            f.write('{"format": "plugin-registry-description", "format_version": 1, '
                    '"plugins": []}')
        rc, out, _ = run("docs", path)
        self.assertEqual(rc, 0)
        self.assertIn("No plugin is registered.", out)


if __name__ == "__main__":
    argv = sys.argv[1:]
    loader = unittest.TestLoader()
    if len(argv) == 2 and argv[0] == "-k":
        loader.testNamePatterns = ["*%s*" % argv[1]]
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped) - len(result.expectedFailures)
    sys.stdout.write("test_scaffold: %d passed, %d failed\n" % (passed, failed))
    sys.exit(1 if failed else 0)
