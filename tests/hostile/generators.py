"""Hostile cases built at test time: links, FIFOs, sockets, devices, bombs and big files cannot (or
should not) be committed. Each generator lays out a project in ``project`` (``schemas/`` exists,
and ``.git/`` marks the repository root) and returns the exact error lines ``validate`` must print;
``outside`` is a directory beside the project, outside the repository.

A new generated case is a new function decorated with ``@case``; a new static case is a new
folder beside this file (``schemas/…`` and ``expected.txt``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

#: The secret a linked file holds: it must never appear in the output.
SECRET = "tok-FAKE-SECRET-0123456789abcdef"

HEAD = "apiVersion: reconciler/v1\nkind: CustomObjectSchema\nslug: {slug}\nlabels: {{singular: X, plural: Xs}}\n"
CONTROL = "(it can hide or rewrite text on a terminal)"

Generator = Callable[[Path, Path], list[str]]
CASES: dict[str, Generator] = {}


def case(fn: Generator) -> Generator:
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


def _secret_file(outside: Path) -> Path:
    secret = outside / "credentials"
    secret.write_text(f"token={SECRET}\n")
    return secret


@case
def symlink_to_secret_outside(project: Path, outside: Path) -> list[str]:
    os.symlink(_secret_file(outside), project / "schemas" / "p.yaml")
    return ["schemas/p.yaml: symbolic link to a file outside the repository; not read"]


@case
def symlink_to_etc_passwd(project: Path, outside: Path) -> list[str]:
    os.symlink("/etc/passwd", project / "schemas" / "p.yaml")
    return ["schemas/p.yaml: symbolic link to a file outside the repository; not read"]


@case
def symlink_dir_outside(project: Path, outside: Path) -> list[str]:
    (outside / "elsewhere").mkdir()
    (outside / "elsewhere" / "x.yaml").write_text(f"description: {SECRET}\n")
    os.symlink(outside / "elsewhere", project / "schemas" / "team")
    return ["schemas/team: symbolic link to a directory outside the repository; not read"]


@case
def schemas_dir_links_outside(project: Path, outside: Path) -> list[str]:
    (project / "schemas").rmdir()
    (outside / "schemas").mkdir()
    (outside / "schemas" / "x.yaml").write_text(f"description: {SECRET}\n")
    os.symlink(outside / "schemas", project / "schemas")
    return [f"schemas: the schemas directory resolves to a directory outside the repository ({project}); not read"]


@case
def symlink_into_git_dir(project: Path, outside: Path) -> list[str]:
    (project / ".git" / "config").write_text(f"[remote \"origin\"]\n\turl = https://x:{SECRET}@example.com/r\n")
    os.symlink("../.git/config", project / "schemas" / "g.yaml")
    return ["schemas/g.yaml: symbolic link to a file in a hidden path (.git/config); not read"]


@case
def dangling_symlink(project: Path, outside: Path) -> list[str]:
    os.symlink("orders.yaml.orig", project / "schemas" / "orders.yaml")
    return ["schemas/orders.yaml: symbolic link to a missing file (a dangling link); not read"]


@case
def symlink_loop(project: Path, outside: Path) -> list[str]:
    os.symlink("loop.yaml", project / "schemas" / "loop.yaml")
    return ["schemas/loop.yaml: symbolic link loop; not read"]


@case
def symlink_dir_cycle(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "team").mkdir()
    os.symlink("..", project / "schemas" / "team" / "up")
    (project / "schemas" / "x.yaml").write_text(HEAD.format(slug="x"))
    return ["schemas/team/up: symbolic link to schemas/, which is already read; not read twice"]


@case
def fifo(project: Path, outside: Path) -> list[str]:
    os.mkfifo(project / "schemas" / "orders.yaml")
    return ["schemas/orders.yaml: is a FIFO, not a file; not read"]


@case
def socket_file(project: Path, outside: Path) -> list[str]:
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(project / "schemas")  # a relative bind: socket paths are limited to ~100 bytes
    try:
        sock.bind("s.yaml")
    finally:
        os.chdir(cwd)
        sock.close()
    return ["schemas/s.yaml: is a socket, not a file; not read"]


@case
def dev_zero_link(project: Path, outside: Path) -> list[str]:
    os.symlink("/dev/zero", project / "schemas" / "zero.yaml")
    return ["schemas/zero.yaml: symbolic link to a character device outside the repository; not read"]


def _bomb(indent: str, key: str) -> str:
    lines = [f'{indent}{key}0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{indent}{key}{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@case
def alias_bomb(project: Path, outside: Path) -> list[str]:
    text = HEAD.format(slug="b") + _bomb("", "lol")
    assert len(text) < 1100
    (project / "schemas" / "b.yaml").write_text(text)
    return ["schemas/b.yaml:5:61: aliases expand to more than the limit of 10,000 nodes"]


@case
def alias_bomb_under_unknown_keys(project: Path, outside: Path) -> list[str]:
    text = HEAD.format(slug="b") + "fields:\n  - id: a\n    type: text\n    labels: {singular: A, plural: As}\n"
    (project / "schemas" / "b.yaml").write_text(text + _bomb("    ", "zz"))
    return ["schemas/b.yaml:9:64: aliases expand to more than the limit of 10,000 nodes"]


@case
def alias_cycle(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "c.yaml").write_text(HEAD.format(slug="c") + "description: &a [*a]\n")
    return ["schemas/c.yaml:5:14: nesting deeper than the limit of 32 levels"]


@case
def deep_nesting_lists(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "d.yaml").write_text(HEAD.format(slug="d") + "description: " + "[" * 50_000
                                                 + "]" * 50_000 + "\n")
    return ["schemas/d.yaml:5:45: nesting deeper than the limit of 32 levels"]


@case
def deep_nesting_mappings(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "d.yaml").write_text(HEAD.format(slug="d") + "description: " + "{a: " * 50_000
                                                 + "}" * 50_000 + "\n")
    return ["schemas/d.yaml:5:138: nesting deeper than the limit of 32 levels"]


@case
def deep_nesting_blocks(project: Path, outside: Path) -> list[str]:
    body = "".join(" " * (i + 2) + "a:\n" for i in range(40))  # level 2 on line 6, level 33 on line 37
    (project / "schemas" / "d.yaml").write_text(HEAD.format(slug="d") + "description:\n" + body)
    return ["schemas/d.yaml:37:35: nesting deeper than the limit of 32 levels"]


@case
def scale_with_5000_digits(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "n.yaml").write_text(
        HEAD.format(slug="n") + "fields:\n  - id: a\n    type: number\n    labels: {singular: A, plural: As}\n"
        "    scale: " + "9" * 5000 + "\n")
    return ["schemas/n.yaml:9:12: number of 5,000 digits, over the limit of 15 digits"]


@case
def file_over_size_limit(project: Path, outside: Path) -> list[str]:
    text = HEAD.format(slug="big") + "description: " + "x" * (2 << 20) + "\n"
    (project / "schemas" / "big.yaml").write_text(text)
    return [f"schemas/big.yaml: file is {len(text):,} bytes, over the size limit of 1 MiB; not read"]


@case
def four_mb_of_comments(project: Path, outside: Path) -> list[str]:
    text = HEAD.format(slug="c") + ("# " + "c" * 77 + "\n") * ((4 << 20) // 80)
    (project / "schemas" / "c.yaml").write_text(text)
    return [f"schemas/c.yaml: file is {len(text):,} bytes, over the size limit of 1 MiB; not read"]


@case
def long_description(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "l.yaml").write_text(HEAD.format(slug="l") + "description: " + "x" * 100_000 + "\n")
    return ["schemas/l.yaml:5:14: text of 100,000 characters, over the limit of 65,536 characters"]


@case
def long_label_in_literal_block(project: Path, outside: Path) -> list[str]:
    value = "".join(f"{SECRET} line {i}\n" for i in range(3000))
    body = "".join(f"        {line}\n" for line in value.splitlines())
    (project / "schemas" / "l.yaml").write_text(
        HEAD.format(slug="l") + "fields:\n  - id: a\n    type: text\n    labels:\n      singular: |\n" + body
        + "      plural: As\n")
    return [f"schemas/l.yaml:9:17: text of {len(value):,} characters, over the limit of 65,536 characters"]


@case
def control_character_in_file_name(project: Path, outside: Path) -> list[str]:
    (project / "schemas" / "orders\x1b[2K.yaml").write_text(HEAD.format(slug="orders"))
    return ["schemas: file name 'orders\\x1b[2K.yaml' holds a control character U+001B; not read"]


@case
def control_characters_on_every_line(project: Path, outside: Path) -> list[str]:
    """A file of 1,000 bad lines gives 20 of them and a count, not 1,000 lines."""
    text = HEAD.format(slug="c") + "".join(f"# ring \x07 {i}\n" for i in range(1000))
    (project / "schemas" / "c.yaml").write_text(text)
    bel = f"control character U+0007 is not allowed {CONTROL}"
    return ["schemas/c.yaml: 1,000 lines hold forbidden characters; the first 20 are listed",
            *(f"schemas/c.yaml:{line}:8: {bel}" for line in range(5, 25))]
