"""The fast reader (the C parser, :mod:`reconciler.yamlread`) gives what the round-trip reader gives:
the same data, the same positions and the same errors on every corpus file, good and bad; everything
works without the C extension; ``fmt``'s fast path gives what its round-trip path gives.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import fmt, yamlread
from reconciler.fileerrors import Loc
from reconciler.files import FilesError, dump_schema, format_text, load_dir, load_text
from reconciler.fmt import _fast_format, _reformat, _render
from reconciler.writing import dump
from reconciler.yamlread import Doc, read_yaml
from tests.conftest import ROOT
from tests.hostile.generators import CASES as GENERATED

pytestmark = pytest.mark.skipif(yamlread.CParser is None, reason="ruamel.yaml.clib is not installed")

BAD = ROOT / "tests" / "files" / "bad"
#: Every YAML file the corpora hold: schemas (good and bad), project files, workflows, plan cases.
CORPUS = sorted(p for top in ("schemas", "examples", "tests/files", "tests/hostile", "tests/cases")
                for p in (ROOT / top).rglob("*.y*ml") if p.is_file() and not p.is_symlink())


def _locs(data: Any, loc: Loc = ()) -> Iterator[Loc]:
    """Every path in ``data``, and one just past each collection (a missing key, an index too far)."""
    yield loc
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _locs(v, (*loc, k))
        yield (*loc, "no-such-key")
        yield (*loc, 0)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _locs(v, (*loc, i))
        yield (*loc, len(data))


def _same(path: Path, text: str | None = None) -> Doc | None:
    """Read ``path`` (or ``text``) with both readers, assert they agree, return the fast one's document."""
    fast, fast_errors = read_yaml(path, text=text)
    slow, slow_errors = read_yaml(path, text=text, fast=False)
    assert [str(e) for e in fast_errors] == [str(e) for e in slow_errors]
    assert (fast is None) == (slow is None)
    if fast is None or slow is None:
        return None
    assert not slow.plain
    if fast.plain:  # read by the C parser (else both are the round-trip reader)
        assert fast.data == slow.data and repr(fast.data) == repr(slow.data)
        for loc in _locs(fast.data):
            for key in (False, True):
                assert fast.position(loc, key=key) == slow.position(loc, key=key), (loc, key)
    return fast


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_readers_agree(path: Path) -> None:
    _same(path)


def test_the_fast_reader_reads_the_good_files() -> None:
    """Without hand-overs on ordinary files, the comparison above would prove nothing."""
    good = [p for p in CORPUS if p.parent.name in ("schemas", "desired") and "bad" not in p.parts
            and "hostile" not in p.parts]
    assert len(good) >= 40
    handed_over = [p for p in good if (doc := read_yaml(p)[0]) is None or not doc.plain]
    assert handed_over == []


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_both_readers_agree_on_generated_cases(case: str, tmp_path: Path) -> None:
    project, outside = tmp_path / "repo", tmp_path / "outside"
    (project / ".git").mkdir(parents=True)
    (project / "schemas").mkdir()
    outside.mkdir()
    GENERATED[case](project, outside)
    for path in sorted(project.rglob("*.y*ml")):
        if path.is_file() and not path.is_symlink():
            _same(path)


# Texts the corpora do not hold: what the fast reader must hand over, and what it must read alike.
TRICKY = [
    "a: 1\nb: 1.5\n", "a: 2024-01-01\n", "a: 0x1f\n", "a: 007\n", "a: +1\n", "a: 1_000\n", "a: &x 1\nb: *x\n",
    "a: !!str 1\n", "%YAML 1.2\n---\na: 1\n", "a: 1\n---\nb: 2\n", "a: 1\n...\n", "a: 1\n---\n", "---\na: 1\n", "a: [1, {b: c}]\n",
    "a:\n- 1\n- 2\n", "? a\n: 1\n", "a: |\n  x\n  y\n", "a: >-\n  x\n  y\n", "a: 'it''s'\n", 'a: "\\u00e9\\x41"\n',
    'a: "\\e"\n', "a: \"x\\r\\ny\"\n", "a:\n  b:\n    c: [d]\n", "[1, 2]\n", "x\n", "", "# only a comment\n",
    "a: 1\r\nb: [x,\r\n  y]\r\n", "é: ü\nb: 中文\n", "a: 𝔘\n", "a: null\nb: ~\nc:\n", "true: 1\n", "1: a\n",
    "a: {b: 1, b: 2}\n", "a: [\n", "a: 'x\n", "a: b: c\n", "a:\tb\n", "- a\n- b: c\n  d: e\n", "a: yes\nb: No\nc: TRUE\n",
    "a:\n  -\n  - b\n", "a: [b: c, d]\n", "a: plain\n  continued\n", "a: 'multi\n  line'\n", "a: Null\nb: nULL\n",
    "<<: {a: 1}\n", "a: = \n", "a: 9" * 1 + "9" * 20 + "\n", "a: -0\nb: -12\n", "{a: 1}\n", "a: [b, c,]\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_both_readers_agree_on_tricky_texts(text: str) -> None:
    _same(Path("t.yaml"), text)


# ---- without the C extension


def test_bad_corpus_without_the_c_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_files_bad import CASES, error_lines

    monkeypatch.setattr(yamlread, "CParser", None)
    for case in CASES:
        monkeypatch.chdir(BAD / case)
        assert error_lines(BAD / case) == (BAD / case / "expected.txt").read_text(encoding="utf-8").splitlines(), case


def test_good_files_without_the_c_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_dir(ROOT / "schemas")
    monkeypatch.setattr(yamlread, "CParser", None)
    assert read_yaml(ROOT / "schemas" / "orders.yaml")[0].plain is False  # type: ignore[union-attr]
    slow = load_dir(ROOT / "schemas")
    assert {k: v.model_dump() for k, v in slow.items()} == {k: v.model_dump() for k, v in fast.items()}


def test_cli_without_the_c_extension(tmp_path: Path) -> None:
    """The extension missing altogether (no wheel for the platform): the commands work, the same."""
    def run(*args: str, hidden: bool, cwd: Path) -> tuple[int, str, str]:
        script = ("import sys\n"
                  + ("sys.modules['_ruamel_yaml'] = None  # its import fails\n" if hidden else "")
                  + "from reconciler import yamlread\n"
                  + f"assert (yamlread.CParser is None) == {hidden}\n"
                  + "from reconciler.cli import main\nsys.argv = ['reconciler', *sys.argv[1:]]\nmain()\n")
        r = subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr

    case = BAD / "multi-error"
    without = run("validate", hidden=True, cwd=case)
    assert without[0] == 1 and len(without[2].splitlines()) == 9
    assert without == run("validate", hidden=False, cwd=case)
    without = run("--dir", str(ROOT / "schemas"), "fmt", "--check", hidden=True, cwd=tmp_path)
    assert without[0] == 0, without
    assert without == run("--dir", str(ROOT / "schemas"), "fmt", "--check", hidden=False, cwd=tmp_path)


# ---- fmt: the fast path gives what the round-trip path gives


def _canonical_files() -> list[Path]:
    return [p for p in CORPUS if "bad" not in p.parts and "hostile" not in p.parts and p.suffix == ".yaml"]


@pytest.mark.parametrize("path", _canonical_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_fmt_fast_path_matches_round_trip(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        formatted = format_text(text, path)
    except FilesError:
        return  # not a mapping
    for ref in (None, "../json-schema/schema.json"):
        assert format_text(text, path, schema_ref=ref) == _reformat(text, ref)
    doc = read_yaml(path, text=formatted)[0]
    assert doc is not None and _fast_format(formatted, doc.data, None) in (formatted, None)


def _comment_free() -> str:
    """The shipped example in canonical form, without its comments."""
    return dump_schema(load_text((ROOT / "schemas" / "orders.yaml").read_text(encoding="utf-8")))


def test_fmt_fast_path_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose body has no comment is checked without the round-trip parser; one with is not."""
    calls: list[str] = []
    reformat = fmt._reformat

    def counting(text: str, schema_ref: str | None) -> str:
        calls.append(text)
        return reformat(text, schema_ref)

    monkeypatch.setattr(fmt, "_reformat", counting)
    head = "# yaml-language-server: $schema=old.json\n# a head comment\n"
    (tmp_path / "a.yaml").write_text(head + _comment_free())
    commented = (ROOT / "schemas" / "orders.yaml").read_text(encoding="utf-8").replace("online-order", "b-order")
    (tmp_path / "b.yaml").write_text(commented)
    changes = fmt.fmt_dir(tmp_path, check=True, schema_ref="new.json")
    assert calls == [commented], "only the commented file went round trip"
    assert [c.path.name for c in changes] == ["a.yaml", "b.yaml"]
    assert changes[0].new == "# yaml-language-server: $schema=new.json\n# a head comment\n" + _comment_free()
    assert fmt.fmt_dir(tmp_path, check=True) == [], "without a reference, both are canonical"


HEADS = ["", "# a\n", "# a\n# b\n", "# a\n\n# b\n", "#a\n", "# a  b\n", "#\n", "# yaml-language-server: $schema=x.json\n",
         "# a\n\n", "\n# a\n", "  # a\n", "# a \n", "\n"]


@pytest.mark.parametrize("head", HEADS)
def test_fmt_fast_path_heads(head: str) -> None:
    """Comment lines before the first key: the fast path takes those ``fmt`` keeps as they are."""
    text = head + _comment_free()
    doc = read_yaml(Path("t.yaml"), text=text)[0]
    assert doc is not None
    for ref in (None, "s.json"):
        quick = _fast_format(text, doc.data, ref)
        assert quick is None or quick == _reformat(text, ref)
    assert (_fast_format(text, doc.data, None) is not None) == (head in HEADS[:8])


#: Text of every kind: what the fast renderer writes plainly and what it must leave to ruamel.
_ALPHABET = st.sampled_from([*"abcXYZ019 ._/()'+-:#,[]{}&*!|>%@`?~\"\\=<", "é", "ß", "\u00a0", "中", "𝔘", "ⅷ", "²",
                             "\u0301"])
_TEXT = st.one_of(st.text(_ALPHABET, min_size=1, max_size=12),
                  st.sampled_from(["true", "null", "1e3", "0x1", "2024-01-01", "yes", "~", "1_0", ".5", "+1", "-",
                                   "NaN", ".inf", "0o7", "1:2", "3.", "12:30:00", "a  b", "a ", " a", "Online Order"]))
_LABELS = st.fixed_dictionaries({"singular": _TEXT, "plural": _TEXT})
_FIELD = st.fixed_dictionaries(
    {"id": _TEXT, "type": st.sampled_from(["text", "number", "dropdown"]), "labels": _LABELS},
    optional={"description": _TEXT, "required": st.booleans(), "scale": st.integers(-5, 10**6),
              "options": st.lists(_TEXT, min_size=1, max_size=3), "acknowledge": st.lists(_TEXT, max_size=2)})
_SCHEMA = st.fixed_dictionaries(
    {"apiVersion": st.just("reconciler/v1"), "kind": st.just("CustomObjectSchema"), "slug": _TEXT, "labels": _LABELS},
    optional={"description": _TEXT, "protect": st.booleans(), "fields": st.lists(_FIELD, min_size=1, max_size=3)})


@settings(max_examples=300, deadline=None)
@given(_SCHEMA)
def test_fast_renderer_writes_what_ruamel_writes(data: dict[str, Any]) -> None:
    """Whatever the renderer writes, the round-trip formatter leaves alone and reads back as it was."""
    text = _render(data)
    if text is None:
        return
    assert _reformat(text, None) == text
    doc = read_yaml(Path("t.yaml"), text=text)[0]
    assert doc is not None and doc.data == data


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_plain_scalars_are_ruamels(value: str) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if fmt._scalar(value) is None:
        return
    seq = CommentedSeq([value, value])
    seq.fa.set_flow_style()
    assert dump(CommentedMap([("k", value), ("s", seq)])) == f"k: {value}\ns: [{value}, {value}]\n"
