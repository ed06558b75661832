"""Editor support: the committed JSON Schemas (issue 6, acceptance 4), `reconciler json-schema`, and
the ``yaml-language-server`` modeline written by `export` and `fmt`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from reconciler.files import format_text
from reconciler.json_schema import json_schema_text
from tests.conftest import ROOT, Cli

COPIES = ROOT / "json-schema"
BAD = ROOT / "tests" / "files" / "bad"
CASES = ROOT / "tests" / "cases"

#: Every bad case, and why: "structural" (the JSON Schema rejects it), "yaml" (not parseable YAML
#: or not one document: the editor's YAML parser reports it before any schema applies) or
#: "semantic" (a rule across values or files that JSON Schema cannot express; `reconciler
#: validate` reports it). A new bad case must be classified here.
BAD_CASES = {
    "bad-acknowledge": "structural",
    "bad-slug": "structural",
    "currency-not-iso": "structural",
    "currency-on-text": "structural",
    "dropdown-no-options": "structural",
    "duplicate-key": "yaml",
    "duplicate-slug": "semantic",  # one slug in two files
    "empty-file": "structural",  # null is not a mapping
    "field-id-space": "structural",
    "field-id-twins": "semantic",  # ids equal modulo -/_ : a relation between two values
    "field-not-mapping": "structural",
    "has-many-true": "structural",
    "label-duplicate-case": "semantic",  # uniqueness case-insensitively across fields
    "labels-missing": "structural",
    "labels-missing-plural": "structural",
    "labels-wrong-type": "structural",
    "live-only-key": "structural",
    "missing-kind": "structural",
    "multi-error": "structural",
    "non-utf8": "yaml",
    "option-duplicate": "structural",
    "option-not-string": "structural",
    "options-empty": "structural",
    "options-on-number": "structural",
    "project-unknown-key": "structural",
    "project-wrong-type": "structural",
    "renamed-from-self": "semantic",  # renamed_from equal to the slug: a relation between two values
    "scale-on-text": "structural",
    "slug-too-long": "structural",
    "snake-case-alias": "structural",
    "tab-indentation": "yaml",
    "top-level-list": "structural",
    "two-documents": "yaml",
    "unknown-api-version": "structural",
    "unknown-field-type": "structural",
    "unknown-key-typo": "structural",
    "unknown-namespace": "semantic",  # another schema's slug is a valid namespace: needs the other files
    "wrong-kind": "structural",
    "wrong-type-bool": "structural",
    "yaml-syntax": "yaml",
}


def copy(kind: str) -> dict[str, Any]:
    return json.loads((COPIES / f"{kind}.json").read_text(encoding="utf-8"))


def validator(kind: str) -> jsonschema.protocols.Validator:
    schema = copy(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_bytes().decode("utf-8"))


def valid_schema_files() -> list[Path]:
    files = sorted((ROOT / "schemas").glob("*.yaml"))
    for case in sorted(p for p in CASES.iterdir() if p.is_dir()):
        options = case / "options.yaml"
        if options.exists() and (load(options) or {}).get("lenient_files"):
            continue  # desired files that are invalid on purpose (the case is about the planner)
        files += sorted((case / "desired").glob("*.y*ml"))
    return files


def test_committed_copies_are_current() -> None:
    for kind in ("schema", "config"):
        assert (COPIES / f"{kind}.json").read_text(encoding="utf-8") == json_schema_text(kind), (
            f"json-schema/{kind}.json is stale: run `reconciler json-schema --write`")


@pytest.mark.parametrize("path", valid_schema_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_valid_schema_files_are_accepted(path: Path) -> None:
    errors = [e.message for e in validator("schema").iter_errors(load(path))]
    assert errors == []


def test_valid_corpus_is_large() -> None:
    assert len(valid_schema_files()) >= 30


def test_valid_project_files_are_accepted() -> None:
    v = validator("config")
    design = {"schemas_dir": "schemas", "prune": False, "ignore": ["*.description"], "environments": {
        "staging": {"url": "https://acme-staging.api-us1.com", "token_env": "AC_STAGING_TOKEN"},
        "production": {"url": "https://acme.api-us1.com", "token_env": "AC_PROD_TOKEN",
                       "protect": ["orders", "orders.order-number"]}}}
    assert list(v.iter_errors(design)) == []
    assert list(v.iter_errors({})) == []
    for path in sorted((ROOT / "examples").rglob("reconciler.yaml")):
        assert list(v.iter_errors(load(path))) == [], path


def test_every_bad_case_is_classified() -> None:
    assert sorted(BAD_CASES) == sorted(p.name for p in BAD.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_corpus(case: str) -> None:
    kind = BAD_CASES[case]
    docs: list[tuple[str, Any]] = []
    parse_failed = False
    for path in sorted((BAD / case).rglob("*.yaml")):
        try:
            docs.append(("config" if path.name == "reconciler.yaml" else "schema", load(path)))
        except Exception:
            parse_failed = True
    rejected = [(k, d) for k, d in docs if not validator(k).is_valid(d)]
    if kind == "yaml":
        assert parse_failed, "expected a YAML-level failure"
    elif kind == "structural":
        assert rejected, "the JSON Schema should reject this case"
    else:
        assert docs and not rejected and not parse_failed, "a semantic case passes the JSON Schema"


def test_type_specific_rules() -> None:
    v = validator("schema")
    base = {"apiVersion": "reconciler/v1", "kind": "CustomObjectSchema", "slug": "x",
            "labels": {"singular": "X", "plural": "Xs"}}

    def field(**kw: Any) -> bool:
        return v.is_valid({**base, "fields": [{"id": "f", "labels": {"singular": "F", "plural": "Fs"}, **kw}]})

    assert field(type="number", scale=2) and not field(type="text", scale=2)
    assert field(type="currency", defaultCurrency="EUR") and not field(type="currency", defaultCurrency="XYZ")
    assert field(type="dropdown", options=["A", "B"]) and not field(type="dropdown")
    assert not field(type="dropdown", options=["A", "A"]) and not field(type="text", options=["A"])
    assert field(type="text", description=None, options=None)


# ---------------------------------------------------------------------------------------------
# The command and the modeline


def test_json_schema_command(cli: Cli) -> None:
    r = cli("json-schema")
    assert r.code == 0 and json.loads(r.out) == copy("schema")
    r = cli("json-schema", "--kind", "config")
    assert r.code == 0 and json.loads(r.out) == copy("config")
    r = cli("json-schema", "--write")
    assert r.code == 0
    assert (cli.workdir / "json-schema" / "schema.json").read_text() == json_schema_text("schema")
    assert "up to date" in cli("json-schema", "--write").out


MODELINE = "# yaml-language-server: $schema=../json-schema/schema.json\n"


def test_export_writes_the_modeline_and_the_copy(seed_files: Cli) -> None:
    cli = seed_files
    assert cli("apply", "--auto-approve").code == 0
    (cli.schemas / "orders.yaml").unlink()
    r = cli("export")
    assert r.code == 0, r.err
    text = (cli.schemas / "online-order.yaml").read_text()
    assert text.startswith(MODELINE + "apiVersion: reconciler/v1\n")
    assert (cli.workdir / "json-schema" / "schema.json").exists()
    assert validator("schema").is_valid(load(cli.schemas / "online-order.yaml"))
    # the exported file is canonical: fmt leaves it alone; the plan is empty
    r = cli("fmt", "--check")
    assert r.code == 0, r.out
    assert cli("plan", "--detailed-exitcode").code == 0


def test_fmt_adds_the_modeline_when_the_copy_exists(seed_files: Cli) -> None:
    cli = seed_files
    path = cli.schemas / "orders.yaml"
    original = path.read_text().removeprefix(MODELINE)  # the shipped file carries one already
    path.write_text(original)
    assert cli("fmt", "--check").code == 0, "without a committed copy, no modeline is asked for"
    assert cli("json-schema", "--write").code == 0
    r = cli("fmt", "--check")
    assert r.code == 1 and "orders.yaml" in r.out
    assert cli("fmt").code == 0
    once = path.read_text()
    assert once == MODELINE + original, "only the modeline was added; comments kept"
    assert cli("fmt").code == 0 and path.read_text() == once, "idempotent"
    assert cli("fmt", "--check").code == 0
    # a stale modeline is replaced, not duplicated
    path.write_text(once.replace("../json-schema/schema.json", "old/place.json"))
    assert cli("fmt").code == 0 and path.read_text() == once
    # --dir elsewhere: the path is relative to the files' folder
    other = cli.workdir / "deep" / "schemas"
    other.mkdir(parents=True)
    (other / "o.yaml").write_text(original)
    assert cli("--dir", str(other), "fmt").code == 0
    assert (other / "o.yaml").read_text().startswith("# yaml-language-server: $schema=../../json-schema/schema.json\n")


def test_format_text_modeline_keeps_comments() -> None:
    text = "# head\napiVersion: reconciler/v1  # eol\nkind: CustomObjectSchema\nslug: x\nlabels: {singular: X, plural: Xs}\n"
    out = format_text(text, schema_ref="s.json")
    assert out == "# yaml-language-server: $schema=s.json\n" + text
    assert format_text(out, schema_ref="s.json") == out
    assert format_text(out) == out, "without a ref, an existing modeline is an ordinary comment"


def test_every_golden_plan_validates_against_the_plan_schema() -> None:
    """``plan --format json`` (the plan file) of every golden case, with and without an apply cost,
    validates against ``reconciler json-schema --kind plan``; an edited file does not."""
    import json as _json

    from reconciler.json_schema import json_schema as _schema
    from reconciler.plan import Estimate
    from reconciler.render import render
    from tests.support.golden import CASES as GOLDEN
    from tests.support.golden import build_case, case_names, load_options

    validator = jsonschema.Draft202012Validator(_schema("plan"))
    for name in case_names():
        if load_options(GOLDEN / name)[2] is not None:  # a case whose planning raises
            continue
        p = build_case(name).stamped(created_at="2026-06-01T12:00:00Z")
        for q in (p, p.with_estimate(Estimate(requests=3, preflight=1, rate=5.0, pace=4.5))):
            errors = [e.message for e in validator.iter_errors(_json.loads(render(q, "json")))]
            assert not errors, (name, errors[:3])
    data = _json.loads(render(build_case("mixed"), "json"))
    data["changes"][0]["kind"] = "rename-schema"
    assert not validator.is_valid(data)
