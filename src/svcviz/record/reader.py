"""Read a recording back as LabUpdates, up to its last complete sample.

A recording cut short (svcviz killed mid-write) ends in a partial line, and a gzip one
without its end-of-stream marker: both are read up to the last whole line, and the cut
is said in `truncated`.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

from svcviz.lab import LabUpdate
from svcviz.record.format import Decoder, FormatError, check_header

GZIP_MAGIC = b"\x1f\x8b"


def _raw_text(path: str) -> tuple[bytes, bool]:
    """The file's bytes (gunzipped when gzip) and whether the gzip stream was cut."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror}") from None
    if not data.startswith(GZIP_MAGIC):
        return data, False
    inflater = zlib.decompressobj(wbits=31)  # gzip wrapper; tolerates a missing tail
    try:
        text = inflater.decompress(data)
    except zlib.error as exc:
        raise FormatError(f"{path}: broken gzip data ({exc})") from None
    return text, not inflater.eof


class Recording:
    """A recording's samples, decoded in order (each LabUpdate is whole: deltas applied)."""

    def __init__(self, path: str) -> None:
        self.path = path
        data, cut = _raw_text(path)
        lines = data.split(b"\n")
        # The last piece is empty for a whole file; anything else is a line cut mid-write.
        self.truncated = cut or lines[-1] != b""
        self._lines = lines[:-1]
        if not self._lines:
            raise FormatError(f"{path}: empty, not an svcviz recording")
        try:
            self.header = json.loads(self._lines[0])
        except ValueError:
            raise FormatError(f"{path}: not an svcviz recording (no header line)") from None
        check_header(self.header)

    def __iter__(self) -> Iterator[LabUpdate]:
        decoder = Decoder()
        for raw in self._lines[1:]:
            try:
                line = json.loads(raw)
            except ValueError:
                raise FormatError(f"{self.path}: a sample line is not JSON") from None
            yield decoder.decode(line)

    def at(self, seconds: float) -> LabUpdate:
        """The sample shown `seconds` after the first one (the last at or before that time)."""
        chosen = first = None
        for update in self:
            first = first if first is not None else update.snapshot.time
            if update.snapshot.time - first > seconds + 1e-6:
                break
            chosen = update
        if chosen is None:
            raise FormatError(f"{self.path}: no samples")
        return chosen

    def duration(self) -> float:
        times = [update.snapshot.time for update in self]
        return times[-1] - times[0] if times else 0.0
