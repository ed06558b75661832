"""Schema files in and out: the public names, gathered from the modules that do each job.

* reading YAML: :mod:`reconciler.source` (the text, defensively), :mod:`reconciler.yamlread` (one
  parse with the C parser, positions kept), :mod:`reconciler.yamlrt` (the round-trip reader for
  what the fast one hands over), errors in :mod:`reconciler.fileerrors` (``path:line:col: message``);
* the file format: :mod:`reconciler.fileformat` (the pydantic model of a file);
* loading a directory: :mod:`reconciler.loading`;
* writing canonical files and export: :mod:`reconciler.writing`;
* ``fmt``: :mod:`reconciler.fmt`.
"""

from __future__ import annotations

from reconciler.fileerrors import MAX_LISTED, FileError, FilesError
from reconciler.fileformat import API_VERSION, KIND
from reconciler.fmt import Reformat, fmt_dir, format_text
from reconciler.loading import LoadedSchemas, default_root, load_dir, load_file, load_text, schema_files
from reconciler.source import MAX_FILE_BYTES
from reconciler.writing import MODELINE_PREFIX, dump_schema, export_schemas, with_modeline
from reconciler.yamlrt import MAX_ALIAS_NODES, MAX_DEPTH, MAX_INT_DIGITS, MAX_TEXT_CHARS

__all__ = [
    "API_VERSION",
    "KIND",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_LISTED",
    "MAX_TEXT_CHARS",
    "MODELINE_PREFIX",
    "FileError",
    "FilesError",
    "LoadedSchemas",
    "Reformat",
    "default_root",
    "dump_schema",
    "export_schemas",
    "fmt_dir",
    "format_text",
    "load_dir",
    "load_file",
    "load_text",
    "schema_files",
    "with_modeline",
]
