"""Parquet output of ``edgepose batch --format parquet``: one row per pose."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgepose.errors import InputError
from edgepose.sinks import JsonLinesSink, Sink
from edgepose.sources import Frame
from edgepose.types import FrameResult


class ParquetSink(Sink):
    """One row per pose (a frame with nobody in it has no row) in a Parquet file, with the
    values of the JSON Lines contract: source, frame, image, mode ("image", "video" or
    null), timestamp_ms, image_width, image_height, id, score, bbox [x, y, w, h], keypoints
    (33 x 5), world (33 x 3 or null). Needs pyarrow (``pip install 'edgepose[parquet]'``);
    rows go out in groups of ``row_group_size`` so a long video is never held in memory.
    Writes ``path`` directly: give it a temporary name (``fileio.atomic_write``)."""

    def __init__(self, path: str | os.PathLike, source_name: str, mode: str | None = None,
                 row_group_size: int = 4096) -> None:
        super().__init__()
        self.pa, pq = import_pyarrow()
        self.path = Path(path)
        self.source_name = source_name
        self.mode = mode
        self.row_group_size = row_group_size
        self._rows: list[dict] = []
        self._writer = pq.ParquetWriter(self.path, parquet_schema(self.pa))

    def write(self, frame: Frame, result: FrameResult, canvas: np.ndarray | None) -> None:
        record = JsonLinesSink.record(self.source_name, frame, result)
        for pose in record["poses"]:
            self._rows.append({"source": record["source"], "frame": record["frame"],
                               "image": record["image"], "mode": self.mode,
                               "timestamp_ms": record["timestamp_ms"],
                               "image_width": record["image_size"][0],
                               "image_height": record["image_size"][1],
                               **{k: pose.get(k) for k in ("id", "score", "bbox", "keypoints", "world")}})
        self.written += 1
        if len(self._rows) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self.pa.Table.from_pylist(self._rows, schema=self._writer.schema))
            self._rows = []

    def close(self) -> None:
        if self._writer is None:
            return
        try:
            self._flush()
        finally:
            self._writer.close()
            self._writer = None


def import_pyarrow():
    """(pyarrow, pyarrow.parquet), or InputError saying what to install."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InputError("Parquet output needs pyarrow: pip install 'edgepose[parquet]'") from None
    return pyarrow, pyarrow.parquet


def parquet_schema(pa):
    point = pa.list_(pa.float64())
    return pa.schema([("source", pa.string()), ("frame", pa.int64()), ("image", pa.string()),
                      ("mode", pa.string()), ("timestamp_ms", pa.float64()), ("image_width", pa.int32()),
                      ("image_height", pa.int32()), ("id", pa.int64()), ("score", pa.float64()),
                      ("bbox", pa.list_(pa.float64())), ("keypoints", pa.list_(point)),
                      ("world", pa.list_(point))])
