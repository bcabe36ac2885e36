"""MediaPipe's TFLite model metadata, read and written with the flatbuffer schemas alone.

MediaPipe Tasks reads a model's input normalisation from the ``TFLITE_METADATA`` entry of
the TFLite file: a ``ModelMetadata`` flatbuffer (file identifier ``M001``). MediaPipe's own
metadata tools (``mediapipe.tasks.python.metadata``) import a C extension that releases
from 0.10.30 on do not ship ("No module named 'mediapipe.tasks.cc'"), so edgepose writes
the entry itself from the generated schema modules, which every release has:
``mediapipe.tasks.metadata.metadata_schema_py_generated`` for the metadata and LiteRT's
``ai_edge_litert.schema_py_generated`` for the model. What it writes is what MediaPipe's
``MetadataWriter`` wrote for the same call (an RGB image input with NormalizationOptions
and value stats, plain feature outputs, ``min_parser_version`` 1.0.0).
"""

from __future__ import annotations

import zipfile

from edgepose.errors import BackendError, ModelError
from edgepose.model_metadata import tflite_metadata_entries

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # what MediaPipe's writer computes for these fields
BUNDLE_ALIGNMENT = 4  # MediaPipe maps bundle members from the file: 4-byte aligned


def _schemas():
    """(metadata schema, TFLite schema, flatbuffers) modules, or a BackendError."""
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as tflite
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata
    except ImportError as exc:
        raise BackendError(f".task bundles need MediaPipe's metadata schema and LiteRT's model "
                           f"schema ({exc}): pip install 'edgepose[mediapipe]'") from None
    return metadata, tflite, flatbuffers


def read_normalisation(model: bytes) -> tuple[list[float], list[float]] | None:
    """(mean, std) of the first input's NormalizationOptions in a TFLite model's metadata,
    or None when the model has no metadata or no normalisation in it."""
    raw = tflite_metadata_entries(model).get(METADATA_NAME)
    if not raw:
        return None
    fb, _, _ = _schemas()
    if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
        return None
    meta = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(raw, 0))
    subgraphs = meta.subgraphMetadata or []
    inputs = (subgraphs[0].inputTensorMetadata or []) if subgraphs else []
    for unit in (inputs[0].processUnits or []) if inputs else []:
        if unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions:
            return [float(v) for v in unit.options.mean], [float(v) for v in unit.options.std]
    return None


def load_model(model: bytes, name: str):
    """A TFLite ``ModelT`` (object API); ModelError when the bytes are not a model."""
    _, tflite, _ = _schemas()
    try:
        return tflite.ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as exc:  # a flatbuffer parser on arbitrary bytes raises anything
        raise ModelError(f"{name} is not a TFLite model ({type(exc).__name__}: {exc})") from None


def input_shape(model) -> tuple[int, ...]:
    """Shape of the first input of a ``ModelT``."""
    graph = model.subgraphs[0]
    return tuple(int(d) for d in graph.tensors[graph.inputs[0]].shape)


def with_image_metadata(model, title: str, description: str, mean: float, std: float) -> bytes:
    """The serialised ``ModelT`` with a ``TFLITE_METADATA`` entry: an RGB image input
    normalised as (x - mean) / std, and one plain feature output per output tensor."""
    fb, tflite, flatbuffers = _schemas()
    image = fb.TensorMetadataT()
    image.name, image.description = "image", "Input image to be processed."
    image.content = fb.ContentT()
    image.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    image.content.contentProperties = fb.ImagePropertiesT()
    image.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    unit = fb.ProcessUnitT()
    unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    unit.options = fb.NormalizationOptionsT()
    unit.options.mean, unit.options.std = [mean], [std]
    image.processUnits = [unit]
    image.stats = fb.StatsT()
    image.stats.max, image.stats.min = [(255.0 - mean) / std], [(0.0 - mean) / std]

    graph = model.subgraphs[0]
    outputs = []
    for index in graph.outputs:
        tensor = fb.TensorMetadataT()
        name = graph.tensors[index].name
        tensor.name = name.decode() if isinstance(name, bytes) else name
        tensor.content = fb.ContentT()
        tensor.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
        tensor.content.contentProperties = fb.FeaturePropertiesT()
        tensor.stats = fb.StatsT()
        outputs.append(tensor)
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], outputs
    meta = fb.ModelMetadataT()
    meta.name, meta.description = title, description
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(1024)
    builder.Finish(meta.Pack(builder), METADATA_IDENTIFIER)
    raw = bytes(builder.Output())

    buffer = tflite.BufferT()
    buffer.data = list(raw)
    model.buffers.append(buffer)
    entries = [e for e in (model.metadata or []) if _name(e.name) != METADATA_NAME]
    entry = tflite.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class AlignedZipFile(zipfile.ZipFile):
    """A zip whose stored members start at multiples of ``BUNDLE_ALIGNMENT`` bytes, as
    MediaPipe's bundle writer makes them (zero bytes before a member's local header)."""

    def _writecheck(self, zinfo: zipfile.ZipInfo) -> None:
        if zinfo.compress_type != zipfile.ZIP_STORED:
            raise ValueError("a .task bundle holds uncompressed (stored) members only")
        offset = self.fp.tell()
        padding = -(offset + len(zinfo.FileHeader())) % BUNDLE_ALIGNMENT
        if padding:
            self.fp.write(b"\0" * padding)
            zinfo.header_offset = offset + padding
        super()._writecheck(zinfo)


def write_bundle(members: dict[str, bytes], path) -> None:
    """A ``.task`` bundle (a zip of stored, aligned members) at ``path``."""
    with AlignedZipFile(path, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
