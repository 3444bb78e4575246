"""CSV bulk import: ``imports/{tenant}/…/x.csv`` in the import bucket → canonical events, streamed.

The file is never loaded whole: bytes are decoded incrementally, rows translated one by one and
published in chunks (``chunk_size`` events, i.e. PutEvents calls of 10), so memory stays flat
whatever the file size. A report (rows accepted, rows rejected with line number and reason) is
written beside the file as ``x.report.json``.

Column mapping, in order of precedence:
1. ``x.mapping.json`` beside the file, else ``imports/{tenant}/default.mapping.json``:
   ``{"columns": {"手机号": "phone", "Name": "trait.name"}, "type": "auto|identify|track",
   "default_event": "Order Completed", "currency": "CNY", "delimiter": ",", "encoding": "utf-8-sig"}``;
2. header-name conventions (:func:`target_for_header`): identifier types (``email``, ``phone``,
   ``user_id``, ``member_id``, ``wechat_openid`` …), order fields (``order_id``, ``revenue``,
   ``currency``), ``timestamp``, ``event``, ``type``, ``message_id``, ``trait.<name>``,
   ``property.<name>``; any other column becomes a trait (identify rows) or property (track rows).
A row is ``track`` when ``type`` says so or (``auto``) when it has an ``order_id`` or ``event``.
"""

from __future__ import annotations

from huiliu.ingest.importer.job import CsvImporter, ImportReport, build_importer
from huiliu.ingest.importer.mapping import (
    ALIASES,
    CONNECTOR,
    FIELDS,
    IMPORT_PREFIX,
    MAX_FIELD_BYTES,
    MAX_REPORTED_REJECTIONS,
    ImportMapping,
    target_for_header,
)
from huiliu.ingest.importer.reading import LineReader, iter_lines
from huiliu.ingest.importer.storage import (
    ImportStore,
    S3ImportStore,
    is_import_file,
    mapping_keys,
    progress_key,
    report_key,
    tenant_of,
)
from huiliu.ingest.importer.translation import RowRejected, RowTranslator

__all__ = [
    "ALIASES",
    "CONNECTOR",
    "FIELDS",
    "IMPORT_PREFIX",
    "MAX_FIELD_BYTES",
    "MAX_REPORTED_REJECTIONS",
    "CsvImporter",
    "ImportMapping",
    "ImportReport",
    "ImportStore",
    "LineReader",
    "RowRejected",
    "RowTranslator",
    "S3ImportStore",
    "build_importer",
    "is_import_file",
    "iter_lines",
    "mapping_keys",
    "progress_key",
    "report_key",
    "target_for_header",
    "tenant_of",
]
