"""Features that keep where things are: a backbone's last feature map pooled over the whole
image and over its four quadrants (`Pooling.REGIONS`), or kept whole with its channels
reduced (`Pooling.MAP`), instead of pooled over the whole image alone.

A backbone's usual output is its last feature map (e.g. 7 x 7 x 1024 for MobileNet v1, 5 x 5 x
2048 for InceptionV3 at 224 x 224) averaged over every position: where an object is in the
image, and which way it moves across it, is mostly gone (docs/training.md, the mirror probe).
`REGIONS` keeps five averages of that map: the whole image (the usual output, first), then the
top-left, top-right, bottom-left and bottom-right quadrants. A quadrant is half the map's
rows and half its columns, rounded up: the middle row and column of an odd-sized map belong to
both halves, so every quadrant of a 5 x 5 map is 3 x 3 and of a 7 x 7 map 4 x 4.

`MAP` keeps the whole image's average (the usual output, first), then the map itself with
its channels reduced to `MAP_CHANNELS` by a fixed projection (`map_projection`, the same for
every model with as many channels): 1024 + 7 x 7 x 32 numbers for MobileNet v1, 2048 + 5 x 5
x 32 for InceptionV3. A head reads from it where in the picture things change
(`realtime.head.where`), whatever changes there.

One backbone call per frame, as before; the feature vector is 5 times as long (`REGIONS`),
2.5 times (`MAP`, MobileNet v1). Defined once here: NumPy (`pool`, for `.tflite` models,
whose map is exposed as their output by `expose_feature_map`) and Keras (`keras_regions`,
inside InceptionV3's graph, so that every backend converted from it pools the same way;
`keras_pool` for either) use the same `region_slices` and `map_projection`.
"""

from __future__ import annotations

import functools

import numpy as np

from realtime.core.errors import InputError
from realtime.core.textenum import TextEnum


class Pooling(TextEnum):
    """How a backbone turns its last feature map into one feature vector (`--pooling`)."""

    GLOBAL = "global"  # the backbone's own output: one average over the whole image
    REGIONS = "regions"  # the whole image and its four quadrants, 5 x the channels
    MAP = "map"  # the whole image, then every position with MAP_CHANNELS numbers


#: Channels `MAP` keeps at each position of the feature map.
MAP_CHANNELS = 32


#: Regions `REGIONS` pools over, in the order of the feature vector.
REGION_NAMES = ("whole", "top-left", "top-right", "bottom-left", "bottom-right")


def features_per_channel(pooling: Pooling) -> int:
    """How many numbers a pooling gives per channel of the feature map (1 or 5; `MAP`: 1,
    its whole-image part, the map's own part being `map_size`)."""
    return len(REGION_NAMES) if Pooling(pooling) is Pooling.REGIONS else 1


def pooled_size(pooling: Pooling, height: int, width: int, channels: int) -> int:
    """The length of the feature vector `pooling` makes of a height x width x channels map."""
    pooling = Pooling(pooling)
    if pooling is Pooling.MAP:
        return channels + height * width * MAP_CHANNELS
    return features_per_channel(pooling) * channels


@functools.lru_cache(maxsize=8)
def map_projection(channels: int) -> np.ndarray:
    """The fixed (channels, MAP_CHANNELS) projection `MAP` reduces each position with: signs
    from an integer hash of (channel, column), scaled by 1 / sqrt(MAP_CHANNELS), so that the
    distance between two positions' vectors is kept on average (a random projection that
    needs no random generator: the same numbers on every machine and NumPy version).
    Made once per channel count (it is used on every frame) and read-only."""
    index = np.arange(channels * MAP_CHANNELS, dtype=np.uint64)
    mixed = (index * np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    mixed ^= mixed >> np.uint64(31)
    mixed = (mixed * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    mixed ^= mixed >> np.uint64(29)
    signs = np.where(mixed & np.uint64(1), 1.0, -1.0).reshape(channels, MAP_CHANNELS)
    projection = (signs / np.sqrt(MAP_CHANNELS)).astype(np.float32)
    projection.flags.writeable = False
    return projection


def region_slices(height: int, width: int) -> list[tuple[slice, slice]]:
    """(rows, columns) of each region of a height x width map, in `REGION_NAMES`' order."""
    if height < 1 or width < 1:
        raise ValueError(f"a feature map of {height} x {width} has no regions")
    top, bottom = slice(0, -(-height // 2)), slice(height // 2, height)
    left, right = slice(0, -(-width // 2)), slice(width // 2, width)
    whole = (slice(0, height), slice(0, width))
    return [whole, (top, left), (top, right), (bottom, left), (bottom, right)]


def pool_regions(maps: np.ndarray) -> np.ndarray:
    """(N, H, W, C) feature maps -> (N, 5 C) float32: each region's mean, regions in order."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) feature maps, got shape {maps.shape}")
    regions = region_slices(maps.shape[1], maps.shape[2])
    parts = [maps[:, rows, cols].mean(axis=(1, 2)) for rows, cols in regions]
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def pool_map(maps: np.ndarray) -> np.ndarray:
    """(N, H, W, C) feature maps -> (N, C + H W MAP_CHANNELS) float32: the whole image's
    mean, then each position (row by row) projected by `map_projection`."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) feature maps, got shape {maps.shape}")
    reduced = maps @ map_projection(maps.shape[3])
    parts = [maps.mean(axis=(1, 2)), reduced.reshape(len(maps), -1)]
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def pool(maps: np.ndarray, pooling: Pooling) -> np.ndarray:
    """(N, H, W, C) feature maps pooled as `pooling` says (`GLOBAL`: the mean)."""
    pooling = Pooling(pooling)
    if pooling is Pooling.REGIONS:
        return pool_regions(maps)
    if pooling is Pooling.MAP:
        return pool_map(maps)
    return np.asarray(maps, np.float32).mean(axis=(1, 2))


def keras_pool(feature_map, pooling: Pooling):
    """`pool` as a Keras tensor op on (N, H, W, C), for a Keras model's graph."""
    import keras

    pooling = Pooling(pooling)
    if pooling is Pooling.REGIONS:
        return keras_regions(feature_map)
    whole = keras.ops.mean(feature_map, axis=(1, 2))
    if pooling is Pooling.GLOBAL:
        return whole
    height, width, channels = (int(v) for v in feature_map.shape[1:])
    # a 1 x 1 convolution and one slice per position, row by row as `pool_map`: no reshape,
    # whose target shape a converted graph would fix to the batch size it was exported with
    kernel = map_projection(channels)[None, None]  # (1, 1, channels, MAP_CHANNELS)
    reduced = keras.ops.conv(feature_map, kernel, strides=1, padding="valid")
    positions = [reduced[:, row, column, :] for row in range(height) for column in range(width)]
    return keras.ops.concatenate([whole, *positions], axis=-1)


def keras_regions(feature_map):
    """The same pooling as a Keras tensor op on (N, H, W, C), for a Keras model's graph."""
    import keras

    height, width = int(feature_map.shape[1]), int(feature_map.shape[2])
    parts = [
        keras.ops.mean(feature_map[:, rows, cols, :], axis=(1, 2))
        for rows, cols in region_slices(height, width)
    ]
    return keras.ops.concatenate(parts, axis=-1)


#: TFLite ops that average a feature map over its positions (a backbone's global pool).
_POOLS = ("AVERAGE_POOL_2D", "MEAN")


def expose_feature_map(content: bytes, source: str) -> bytes:
    """A `.tflite` model rewritten so that its one output is its last feature map: the input
    of the last average pool (or mean) over a map larger than 1 x 1, in execution order.

    Returns the new model's bytes; nothing else in the model changes (the ops after the pool
    still run, their results unused). InputError when the model has no such pool (`source`
    names the file in the message)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except Exception:
        raise InputError(f"{source} is not a readable .tflite model") from None
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    found = None
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        if name not in _POOLS or op.inputs is None or len(op.inputs) == 0:
            continue
        shape = tuple(int(v) for v in graph.tensors[op.inputs[0]].shape)
        if len(shape) == 4 and shape[1] * shape[2] > 1:
            found = int(op.inputs[0])
    if found is None:
        raise InputError(
            f"{source} has no average-pooled feature map: --pooling regions needs a backbone "
            "that ends in a global average pool"
        )
    graph.outputs = np.array([found], np.int32)
    import flatbuffers

    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
