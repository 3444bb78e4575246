"""Streaming CSV reading: incremental decoding, resumable byte offsets."""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator

from huiliu.ingest.importer.mapping import MAX_FIELD_BYTES


def iter_lines(chunks: Iterable[bytes], encoding: str = "utf-8-sig") -> Iterator[str]:
    """Decode byte chunks incrementally and yield lines with their ``\\n`` (csv handles ``\\r``)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        start = 0
        while True:
            end = pending.find("\n", start)
            if end < 0:
                break
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
        if len(pending) > MAX_FIELD_BYTES * 16:
            raise ValueError("a line is longer than 1 MB")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


class LineReader:
    """Lines of a byte stream with the byte offset after the last line handed out (checkpoints).

    Lines are split on ``b"\\n"`` before decoding, which is exact for ASCII-compatible encodings
    (UTF-8, GB18030/GBK, Latin-1 …). For UTF-16/32 ``offset`` is None: such files resume by line
    number (re-read and skipped) instead of a byte range.
    """

    def __init__(self, chunks: Iterable[bytes], encoding: str = "utf-8-sig", offset: int = 0) -> None:
        name = codecs.lookup(encoding).name
        self.splittable = not name.startswith(("utf-16", "utf-32"))
        if offset and name == "utf-8-sig":
            encoding = "utf-8"  # a BOM can only be at the very start
        self.chunks = chunks
        self.encoding = encoding
        self.offset: int | None = offset if self.splittable else None

    def __iter__(self) -> Iterator[str]:
        if not self.splittable:
            yield from iter_lines(self.chunks, self.encoding)
            return
        decoder = codecs.getincrementaldecoder(self.encoding)(errors="strict")
        pending = b""
        for chunk in self.chunks:
            pending = pending + chunk if pending else chunk
            start = 0
            while True:
                end = pending.find(b"\n", start)
                if end < 0:
                    break
                text = decoder.decode(pending[start : end + 1])
                assert self.offset is not None
                self.offset += end + 1 - start
                yield text
                start = end + 1
            pending = pending[start:]
            if len(pending) > MAX_FIELD_BYTES * 16:
                raise ValueError("a line is longer than 1 MB")
        text = decoder.decode(pending, final=True)
        assert self.offset is not None
        self.offset += len(pending)
        if text:
            yield text
