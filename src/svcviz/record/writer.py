"""Write a recording: a header, then one line per LabUpdate, flushed per sample.

Flushed per sample so that a svcviz killed with SIGKILL leaves a file readable up to its
last complete sample: plain files are flushed to the kernel; gzip ones (a name ending in
.gz) with Z_SYNC_FLUSH, which ends each sample on a byte boundary a reader can decode up to.
"""

from __future__ import annotations

import gzip
import io
import time
import zlib

from svcviz.lab import LabUpdate
from svcviz.record.format import Encoder, dumps, header


class RecordError(Exception):
    """The recording cannot be written (a bad path, a full disk): one line."""


class Writer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.gzip = path.endswith(".gz")
        try:
            raw = open(path, "wb")  # noqa: SIM115 -- kept open for the session, closed in close()
        except OSError as exc:
            raise RecordError(f"cannot write the recording {path}: {exc.strerror}") from None
        self._raw = raw
        self._zipped = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if self.gzip else None
        self._out: io.BufferedIOBase = raw if self._zipped is None else self._zipped
        self._encoder = Encoder()
        self.samples = 0
        self._put(dumps(header(time.time())))

    def write(self, update: LabUpdate) -> None:
        self._put(dumps(self._encoder.encode(update)))
        self.samples += 1

    def _put(self, text: str) -> None:
        if self._out.closed:
            return
        self._out.write(text.encode())
        if self._zipped is not None:
            self._zipped.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()  # gzip: the end-of-stream marker and the checksum
            self._raw.close()
