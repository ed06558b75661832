"""The stable risk codes: ``DL`` data loss, ``BC`` breaking, ``NA`` not allowed by the API.

Codes are never renumbered or reused (the README lists them). Each has a title and a hint, written
into every finding of the plan file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["CODES", "COUNTED_CODES", "Code", "CodeInfo", "Severity"]

Severity = Literal["danger", "warning", "error"]


class Code(StrEnum):
    """Every code the planner emits."""

    DL101 = "DL101"
    DL102 = "DL102"
    DL103 = "DL103"
    DL104 = "DL104"
    BC201 = "BC201"
    BC202 = "BC202"
    NA301 = "NA301"
    NA302 = "NA302"
    NA303 = "NA303"
    NA304 = "NA304"
    NA305 = "NA305"
    NA306 = "NA306"
    NA307 = "NA307"
    NA308 = "NA308"
    NA309 = "NA309"
    NA310 = "NA310"
    NA311 = "NA311"

    @property
    def family(self) -> Literal["DL", "BC", "NA"]:
        family = self.value[:2]
        assert family in ("DL", "BC", "NA")
        return family  # type: ignore[return-value]

    @property
    def severity(self) -> Severity:
        return _SEVERITY[self.family]

    @property
    def data_loss(self) -> bool:
        return self.family == "DL"

    @property
    def not_allowed(self) -> bool:
        return self.family == "NA"

    @property
    def info(self) -> CodeInfo:
        return CODES[self]


_SEVERITY: dict[str, Severity] = {"DL": "danger", "BC": "warning", "NA": "error"}


@dataclass(frozen=True)
class CodeInfo:
    """A code's one-line title and its hint (what to do about it)."""

    code: Code
    title: str
    hint: str

    @property
    def family(self) -> str:
        return self.code.family

    @property
    def severity(self) -> Severity:
        return self.code.severity


CODES: dict[Code, CodeInfo] = {
    c.code: c
    for c in (
        CodeInfo(Code.DL101, "delete a schema: all of its records are deleted",
                 "apply needs --allow-data-loss; to keep the schema, put its file back or add it to protect"),
        CodeInfo(Code.DL102, "delete a field: its values on every record are lost",
                 "apply needs --allow-data-loss; to keep the field, put it back in the file"),
        CodeInfo(Code.DL103, "copy a field: values the conversion cannot carry are not copied",
                 "apply needs --allow-data-loss; to carry those values, fix them in the old field first"),
        CodeInfo(Code.DL104, "copy a field: the conversion drops part of every value",
                 "apply needs --allow-data-loss; the old field keeps the whole value until it is deleted"),
        CodeInfo(Code.BC201, "make a field required while records lack a value",
                 "fill the field on existing records first, or keep required: false"),
        CodeInfo(Code.BC202, "change a schema's slug: integrations using the old slug break",
                 "update every integration that uses the old slug; remove renamed_from once applied"),
        CodeInfo(Code.NA301, "change a field's type",
                 "add a field with a new id and delete the old one"),
        CodeInfo(Code.NA302, "re-use the id of a field that is marked for deletion",
                 "deleted ids are not recycled at once; pick a new id"),
        CodeInfo(Code.NA303, "field id that differs from an existing one only by - / _ or case",
                 "the API counts - and _ (and case) as the same; keep the existing id or pick a distinct one"),
        CodeInfo(Code.NA304, "remove or rename a dropdown/multiselect option",
                 "options are append-only (a rename looks like remove + add); put the option back in the file"),
        CodeInfo(Code.NA305, "hasMany: true on a relationship",
                 "the API accepts only hasMany: false; remove hasMany or set it to false"),
        CodeInfo(Code.NA306, "edit an inherited field or relationship of a child schema",
                 "inherited fields belong to the parent schema: change them there, or add a new field"),
        CodeInfo(Code.NA307, "delete a field of a public or child schema",
                 "the API deletes fields only on private schemas; put the field back in the file"),
        CodeInfo(Code.NA308, "change a relationship's namespace",
                 "not documented as possible; add a relationship with a new id instead"),
        CodeInfo(Code.NA309, "delete a relationship",
                 "the API has no way to delete a relationship; put it back in the file"),
        CodeInfo(Code.NA310, "migrate a field's values between types no conversion joins",
                 "use one of the conversions reconciler has (convert: NAME), or a field of a type one joins"),
        CodeInfo(Code.NA311, "migrate_from names a field that is in neither the account nor the files",
                 "name the old field's id as the account has it, or remove migrate_from"),
    )
}

#: Codes whose findings get a record count (an impact query; DL103's is the copy's count,
#: :mod:`reconciler.copycount`).
COUNTED_CODES = frozenset({Code.DL101, Code.DL102, Code.DL103, Code.BC201})
