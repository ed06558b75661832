"""Loading, formatting and exporting schema files; the project file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.files import (
    FileError,
    FilesError,
    Reformat,
    dump_schema,
    export_schemas,
    fmt_dir,
    format_text,
    load_dir,
    load_text,
)
from reconciler.model import Field, FieldType, Labels, Option, Relationship, Schema
from reconciler.project import Environment, ProjectConfig, find_project, load_project

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ROOT / "schemas" / "orders.yaml"

COMMENTED = """\
# top comment
# second top line
kind: CustomObjectSchema   # kind eol
apiVersion: reconciler/v1
# above slug
slug: orders
fields:
  # above the first field
  - type: number  # type eol
    # above id
    id: total
    labels: {singular: Total, plural: Totals}
    scale: 2
    required: true
  # above the second field
  - id: status
    type: dropdown
    labels:
      plural: Statuses
      singular: Status
    options:
      - New  # new eol
      # above paid
      - Paid
    required: true
# above labels
labels: {singular: Order, plural: Orders}
# trailing comment
"""


def test_error_str_and_sorting() -> None:
    a = FileError(Path("schemas/b.yaml"), 3, 7, "x")
    b = FileError(Path("schemas/a.yaml"), 10, 1, "y")
    c = FileError(Path("schemas/a.yaml"), 2, 5, "z")
    assert str(a) == "schemas/b.yaml:3:7: x"
    assert [str(e) for e in FilesError([a, b, c]).errors] == [
        "schemas/a.yaml:2:5: z", "schemas/a.yaml:10:1: y", "schemas/b.yaml:3:7: x"]


def test_orders_example_loads() -> None:
    loaded = load_dir(ORDERS.parent)
    assert list(loaded) == ["online-order"]
    schema = loaded["online-order"]
    assert len(schema.fields) == 6
    assert len(schema.relationships) == 1
    assert loaded.sources["online-order"] == ORDERS.parent / "orders.yaml"
    assert not loaded.empty and not loaded.missing
    status = schema.field("order-ship-status")
    assert status is not None and status.option_values == ("Received", "Processing", "Shipped")


def test_orders_format_is_stable() -> None:
    text = ORDERS.read_text(encoding="utf-8")
    once = format_text(text)
    assert format_text(once) == once
    assert "# values; the API assigns the ids" in once
    assert "\"Online Order\" schema" in once.splitlines()[1]  # after the editor-schema line
    assert load_text(once).comparable() == load_text(text).comparable()


def test_missing_and_empty_directories(tmp_path: Path) -> None:
    missing = load_dir(tmp_path / "nope")
    assert missing.empty and missing.missing and len(missing) == 0
    (tmp_path / "notes.txt").write_text("not a schema")
    empty = load_dir(tmp_path)
    assert empty.empty and not empty.missing


def test_yml_suffix_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "orders.yml").write_text(ORDERS.read_text())
    (tmp_path / ".orders.yaml.swp").write_text("junk")
    (tmp_path / ".hidden.yaml").write_text("junk: [")
    assert list(load_dir(tmp_path)) == ["online-order"]


def test_relationship_to_another_schema(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_text(ORDERS.read_text())
    (tmp_path / "items.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: items\n"
        "labels: {singular: Item, plural: Items}\nrelationships:\n"
        "  - id: order\n    namespace: online-order\n    labels: {singular: Order, plural: Orders}\n")
    assert sorted(load_dir(tmp_path)) == ["items", "online-order"]


def test_no_coercion() -> None:
    base = "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: x\nlabels: {singular: X, plural: Xs}\n"
    with pytest.raises(FilesError) as exc:
        load_text(base + "protect: 1\ndescription: 2024-01-01\n", "x.yaml")
    assert [str(e) for e in exc.value.errors] == [
        "x.yaml:5:10: 'protect' must be true or false, not the number 1",
        "x.yaml:6:14: 'description' must be a string, not the date 2024-01-01",
    ]


# ---- fmt


def test_format_canonical_order_and_comments() -> None:
    out = format_text(COMMENTED)
    assert out == """\
# top comment
# second top line
apiVersion: reconciler/v1
kind: CustomObjectSchema   # kind eol
# above slug
slug: orders
# above labels
labels: {singular: Order, plural: Orders}
fields:
  # above the first field
  # above id
  - id: total
    type: number  # type eol
    labels: {singular: Total, plural: Totals}
    required: true
    scale: 2
  # above the second field
  - id: status
    type: dropdown
    labels: {singular: Status, plural: Statuses}
    required: true
    options:
      - New  # new eol
      # above paid
      - Paid
# trailing comment
"""
    assert format_text(out) == out
    assert load_text(out).comparable() == load_text(COMMENTED).comparable()


def test_format_is_idempotent_on_dump() -> None:
    schema = load_text(ORDERS.read_text())
    text = dump_schema(schema)
    assert format_text(text) == text


def test_format_flows_block_options_without_comments() -> None:
    text = COMMENTED.replace("  - New  # new eol\n      # above paid\n", "  - New\n")
    assert "    options: [New, Paid]\n" in format_text(text)


def test_format_keeps_unknown_keys_and_quotes() -> None:
    text = 'slug: x\nzzz: 1\napiVersion: "reconciler/v1"\n'
    assert format_text(text) == 'apiVersion: "reconciler/v1"\nslug: x\nzzz: 1\n'


def test_format_reports_yaml_errors() -> None:
    with pytest.raises(FilesError) as exc:
        format_text("a: [1\n", "x.yaml")
    assert str(exc.value).startswith("x.yaml:2:1: invalid YAML")


def test_fmt_dir_check_and_write(tmp_path: Path) -> None:
    messy = tmp_path / "orders.yaml"
    messy.write_text(COMMENTED)
    clean = tmp_path / "clean.yaml"
    clean.write_text(format_text(ORDERS.read_text()).replace("online-order", "clean"))
    assert fmt_dir(tmp_path, check=True) == [Reformat(messy, COMMENTED, format_text(COMMENTED))]
    assert messy.read_text() == COMMENTED  # check mode writes nothing
    assert [r.path for r in fmt_dir(tmp_path)] == [messy]
    assert messy.read_text() == format_text(COMMENTED)
    assert fmt_dir(tmp_path, check=True) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_reformat_diff() -> None:
    change = Reformat(Path("schemas/orders.yaml"), "slug: x\nkind: K\napiVersion: v", "apiVersion: v\nslug: x\n")
    assert change.diff() == (
        "--- a/schemas/orders.yaml\n+++ b/schemas/orders.yaml\n@@ -1,3 +1,2 @@\n"
        "+apiVersion: v\n slug: x\n-kind: K\n-apiVersion: v\n\\ No newline at end of file\n")
    assert str(change) == "schemas/orders.yaml"


def test_fmt_dir_refuses_invalid_files(tmp_path: Path) -> None:
    """fmt runs every validate check: a file that parses but breaks a rule is not formatted."""
    (tmp_path / "a.yaml").write_text(COMMENTED)
    invalid = COMMENTED.replace("scale: 2", "scale: 2\n    defaultCurrency: EUR").replace("slug: orders", "slug: b")
    (tmp_path / "b.yaml").write_text(invalid)
    with pytest.raises(FilesError) as exc:
        fmt_dir(tmp_path)
    assert [str(e) for e in exc.value.errors] == [
        f"{tmp_path / 'b.yaml'}:14:22: defaultCurrency applies only to currency fields, not number"]
    assert (tmp_path / "a.yaml").read_text() == COMMENTED
    assert (tmp_path / "b.yaml").read_text() == invalid


def test_fmt_dir_reads_subdirectories(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "orders.yaml").write_text(COMMENTED)
    assert [r.path for r in fmt_dir(tmp_path, check=True)] == [tmp_path / "team" / "orders.yaml"]


def test_fmt_dir_refuses_broken_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(COMMENTED)
    (tmp_path / "b.yaml").write_text("a: 1\na: 2\n")
    with pytest.raises(FilesError, match="duplicate key 'a'"):
        fmt_dir(tmp_path)
    assert (tmp_path / "a.yaml").read_text() == COMMENTED


# ---- export


def _desired_flags(schema: Schema) -> object:
    return (schema.protect, schema.renamed_from, schema.acknowledge,
            [(f.id, f.protect, f.acknowledge) for f in schema.active_fields])


def _schemas() -> list[Schema]:
    orders = load_text(ORDERS.read_text())
    live = Schema(
        slug="tickets", id="42", visibility="private", createdTimestamp="2024-01-01T00:00:00Z",
        labels=Labels(singular="Ticket", plural="Tickets"),
        description="Support tickets\nsecond line: with colon",
        protect=True, acknowledge=("DL101",), renamed_from="issues",
        fields=(
            Field(id="prio", type=FieldType.DROPDOWN, labels=Labels(singular="Prio", plural="Prios"),
                  options=(Option(value="a, b", id="u1"), Option(value="yes"), Option(value="# x")),
                  required=True, protect=True, acknowledge=("BC201",), inherited=True, status="active"),
            Field(id="gone", type=FieldType.TEXT, labels=Labels(singular="Gone", plural="Gones"),
                  status="marked_for_deletion"),
            Field(id="cost", type=FieldType.CURRENCY, labels=Labels(singular="Cost", plural="Costs"),
                  defaultCurrency="EUR", description="'quoted' text"),
        ),
        relationships=(Relationship(id="owner", namespace="contacts",
                                    labels=Labels(singular="Owner", plural="Owners")),),
    )
    return [orders, live]


def test_export_round_trip(tmp_path: Path) -> None:
    schemas = _schemas()
    written = export_schemas(schemas, tmp_path / "out")
    assert written == [tmp_path / "out" / "online-order.yaml", tmp_path / "out" / "tickets.yaml"]
    loaded = load_dir(tmp_path / "out")
    for schema in schemas:
        again = loaded[schema.slug]
        assert again.comparable() == schema.comparable()
        assert _desired_flags(again) == _desired_flags(schema)
        assert again.id is None and all(not f.inherited for f in again.fields)
    assert loaded["tickets"].field("gone") is None
    text = (tmp_path / "out" / "tickets.yaml").read_text()
    assert format_text(text) == text
    # exporting the same again writes nothing
    assert export_schemas(schemas, tmp_path / "out") == []


def test_export_refuses_to_overwrite(tmp_path: Path) -> None:
    schemas = _schemas()
    (tmp_path / "tickets.yaml").write_text("# mine\n")
    with pytest.raises(FilesError) as exc:
        export_schemas(schemas, tmp_path)
    assert [str(e) for e in exc.value.errors] == [
        f"{tmp_path / 'tickets.yaml'}: already exists with different content; not overwritten "
        "(use --force to replace it)"]
    assert not (tmp_path / "online-order.yaml").exists()  # nothing written at all
    assert (tmp_path / "tickets.yaml").read_text() == "# mine\n"
    assert len(export_schemas(schemas, tmp_path, force=True)) == 2
    assert load_dir(tmp_path)["tickets"].comparable() == schemas[1].comparable()


def test_dump_omits_defaults() -> None:
    schema = Schema(slug="x", labels=Labels(singular="X", plural="Xs"),
                    fields=(Field(id="a", type=FieldType.TEXT, labels=Labels(singular="A", plural="As")),))
    assert dump_schema(schema) == (
        "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: x\n"
        "labels: {singular: X, plural: Xs}\nfields:\n"
        "  - id: a\n    type: text\n    labels: {singular: A, plural: As}\n")


# ---- project


def test_project_defaults_when_missing(tmp_path: Path) -> None:
    assert load_project(tmp_path / "reconciler.yaml") == ProjectConfig()
    assert find_project(tmp_path) is None
    (tmp_path / "reconciler.yaml").write_text("# nothing yet\n")
    assert find_project(tmp_path) == tmp_path / "reconciler.yaml"
    assert load_project(tmp_path / "reconciler.yaml") == ProjectConfig()


def test_project_design_example(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("""\
schemas_dir: schemas
prune: false                     # never delete
environments:
  staging: {url: https://acme-staging.api-us1.com, token_env: AC_STAGING_TOKEN}
  production:
    url: https://acme.api-us1.com
    token_env: AC_PROD_TOKEN
    protect: [orders, orders.order-number]
ignore: ["*.description"]
""")
    config = load_project(path)
    assert config.environments["production"] == Environment(
        url="https://acme.api-us1.com", token_env="AC_PROD_TOKEN", protect=["orders", "orders.order-number"])
    assert config.ignore == ["*.description"]
    assert config.schemas_dir == "schemas" and config.prune is False


def test_project_rules(tmp_path: Path) -> None:
    path = tmp_path / "reconciler.yaml"
    path.write_text("environments:\n  prod:\n    url: acme.api-us1.com\n    protect: [orders, Orders.x]\n")
    with pytest.raises(FilesError) as exc:
        load_project(path)
    assert [str(e) for e in exc.value.errors] == [
        f"{path}:3:10: url 'acme.api-us1.com' must start with https://",
        f"{path}:4:23: protect entry 'Orders.x' must be 'slug' or 'slug.field-id'",
    ]
