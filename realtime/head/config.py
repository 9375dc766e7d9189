"""The head's architecture (`HeadConfig`), as metadata.json records it, and the names of its
layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

WINDOW_INPUT_LAYER = "window_input"
#: Numbers a `motion` head reads about how far the picture moved (realtime.head.motion)
MOTION_DIMS = 4
#: With `motion_quadrants`, the same numbers for each of the thumbnail's 2 x 2 quadrants too
#: (`realtime.head.motion.QUADRANTS`)
MOTION_QUADRANTS = 4
#: The head's fields that are true or false (metadata.json writes each only when it is on)
SWITCHES = ("where_trend", "where_shift", "motion_scores", "motion_quadrants", "motion_summary")
WINDOW_OFFSET_LAYER = "window_offset"
DENSE_LAYER = "dense"
#: with `motion_scores`: the fitted scores of the motion, added before the softmax
MOTION_SCORES_LAYER = "motion_scores"
PROBS_LAYER = "probs"
#: with `members` > 1: the mean of the members' probabilities
MEMBERS_LAYER = "members"


def gru_layer(index: int) -> str:
    """The name `build_head` gives its `index`-th GRU layer."""
    return f"gru_{index}"


def member_layer(name: str, member: int) -> str:
    """The name of member `member`'s layer `name` (`HeadConfig.members`): the first member's
    layers keep the names of a head of one member; the others' start with `m<member>_`."""
    return name if member == 0 else f"m{member}_{name}"


def member_of(name: str) -> int:
    """Which member a layer named by `member_layer` belongs to (0 for any other name)."""
    prefix, _, rest = name.partition("_")
    number = prefix[1:]
    return int(number) if rest and prefix[:1] == "m" and number.isdigit() else 0


def where_dims(trend: bool, shift: bool) -> int:
    """How many numbers say where the picture changes: 2 (x, y) for the trend, 2 more for
    the shift; 0 without either."""
    return 2 * (bool(trend) + bool(shift))


def motion_dims(motion: int, quadrants: bool) -> int:
    """How many numbers say how far the picture moved: `MOTION_DIMS` for a head with `motion`
    (the whole thumbnail's), times 1 + `MOTION_QUADRANTS` with `quadrants`; 0 without."""
    return MOTION_DIMS * (1 + MOTION_QUADRANTS * bool(quadrants)) * bool(motion)


class HeadInput(Enum):
    """What the first GRU reads at each step of a window (see the module's docstring)."""

    RAW = "raw"
    APPEARANCE_CHANGE = "appearance+change"


class ChangeReference(Enum):
    """What an `appearance+change` head measures change against, within each window."""

    FIRST = "first"  # the window's first valid frame
    MEAN = "mean"  # the mean of the window's valid frames


class ChangeBasis(Enum):
    """Which directions an `appearance+change` head's change part keeps (fitted in training;
    the runtime reads only the fitted matrix)."""

    FRAMES = "frames"  # the leading principal components of the training frames
    CHANGES = "changes"  # those of the changes within training windows (against the reference)
    # the frames' first min(appearance_dims, change_dims) components, then the changes' leading
    # directions for the rest; each group scaled on its own
    BOTH = "both"
    # the frames' first min(appearance_dims, change_dims) components, then the directions in
    # which windows of different classes change differently (linear discriminants of each
    # training video's trend, needs the training labels); each group scaled on its own
    DISCRIMINANT = "discriminant"
    # for features pooled over the whole image and its quadrants (`--pooling regions`): the
    # looks and the first min(appearance_dims, change_dims) change columns read the whole
    # image's part alone (as on globally pooled features), the rest of C the leading
    # directions in which where things are changes within training windows (each quadrant
    # minus the whole image); each group scaled on its own
    QUADRANTS = "quadrants"


@dataclass(frozen=True)
class HeadConfig:
    """The head's architecture, as recorded in metadata.json (`head`)."""

    gru_units: tuple[int, ...] = (16, 8)
    dropout: float = 0.4
    dense_units: int = 8
    input: HeadInput = HeadInput.RAW
    appearance_dims: int = 0  # APPEARANCE_CHANGE: numbers for how a frame looks
    change_dims: int = 0  # APPEARANCE_CHANGE: numbers for how it changed
    appearance_offset: float = 0.0  # training only: offsets of looks, x the class spread
    change_reference: ChangeReference = ChangeReference.FIRST  # APPEARANCE_CHANGE
    change_basis: ChangeBasis = ChangeBasis.FRAMES  # APPEARANCE_CHANGE, fitting only
    #: APPEARANCE_CHANGE on `Pooling.MAP` features: the GRU also reads, at every step, the
    #: window's trend of where the picture changes (`realtime.head.where`, 2 numbers)
    where_trend: bool = False
    #: with `where_trend`: the GRU also reads how far the picture moved over the window
    #: (`realtime.head.where.window_shift`, 2 numbers)
    where_shift: bool = False
    #: (rows, columns, channels) of the map part that ends each feature vector (`where_trend`)
    map_shape: tuple[int, int, int] | None = None
    #: APPEARANCE_CHANGE: the side of the grayscale thumbnail that ends each feature vector
    #: (after the map, if any), whose translation over the window the GRU also reads at every
    #: step (`realtime.head.motion`, 4 numbers); 0: none
    motion: int = 0
    #: with `motion`: its 4 numbers go to the class scores instead of into the first GRU: a
    #: linear discriminant of them, fitted on the training windows, trusted as far as
    #: training videos it was not fitted on bear it out, fixed, added to the scores before
    #: the softmax (`realtime.head.layers.MotionScores`), so that the motion says what it
    #: says about the class and cannot mix with how the frames look
    motion_scores: bool = False
    #: with `motion_scores`: the scores also read the same 4 numbers for each quadrant of the
    #: thumbnail (20 in all, `realtime.head.motion.QUADRANTS`), through a discriminant whose
    #: covariance is shrunk (Ledoit-Wolf): where one part of the picture moves, the whole
    #: picture's numbers average it away
    motion_quadrants: bool = False
    #: with `motion_quadrants`: the discriminant reads the 20 numbers summarised so as not to
    #: say which part moved (`realtime.head.motion.quadrant_summary`: the whole thumbnail's 4,
    #: the quadrants' steps summed, their divergence and curl; 12 in all), folded back into
    #: a kernel over the 20: fitting only, the head computes what it computes without it
    motion_summary: bool = False
    #: how many GRU stacks (GRUs -> Dropout -> Dense -> scores) read the same input, each with
    #: its own initial weights, trained side by side on their own losses; the head's
    #: probabilities are their mean (the motion's scores added to each member's)
    members: int = 1

    def __post_init__(self):
        if not isinstance(self.input, HeadInput):
            raise TypeError("HeadConfig.input must be a HeadInput")
        if not isinstance(self.change_reference, ChangeReference):
            raise TypeError("HeadConfig.change_reference must be a ChangeReference")
        if not isinstance(self.change_basis, ChangeBasis):
            raise TypeError("HeadConfig.change_basis must be a ChangeBasis")
        if isinstance(self.members, bool) or not isinstance(self.members, int):
            raise TypeError("HeadConfig.members must be a whole number")
        if self.members < 1:
            raise ValueError(f"members must be 1 or more, not {self.members}")
        if not self.gru_units or min(self.gru_units) < 1 or self.dense_units < 1:
            raise ValueError("the head needs at least one GRU and positive widths")
        if self.input is HeadInput.APPEARANCE_CHANGE and min(self.dims) < 1:
            raise ValueError(f"{self.input.value} needs appearance_dims and change_dims >= 1")
        if self.where_trend and self.input is not HeadInput.APPEARANCE_CHANGE:
            raise ValueError(f"where_trend needs the {HeadInput.APPEARANCE_CHANGE.value} input")
        if self.where_shift and not self.where_trend:
            raise ValueError("where_shift needs where_trend")
        if self.map_shape is not None and (len(self.map_shape) != 3 or min(self.map_shape) < 1):
            raise ValueError(f"map_shape must be 3 positive sizes, not {self.map_shape}")
        if self.motion < 0 or self.motion == 1:
            raise ValueError(
                f"motion must be 0 or a thumbnail side of 2 or more, not {self.motion}"
            )
        if self.motion and self.input is not HeadInput.APPEARANCE_CHANGE:
            raise ValueError(f"motion needs the {HeadInput.APPEARANCE_CHANGE.value} input")
        if self.motion_scores and not self.motion:
            raise ValueError("motion_scores needs motion")
        if self.motion_quadrants and not self.motion_scores:
            raise ValueError("motion_quadrants needs motion_scores")
        if self.motion_quadrants and (self.motion < 4 or self.motion % 2):
            raise ValueError(
                f"motion_quadrants needs an even thumbnail side of 4 or more, not {self.motion}"
            )
        if self.motion_summary and not self.motion_quadrants:
            raise ValueError("motion_summary needs motion_quadrants")

    @property
    def where_dims(self) -> int:
        """Numbers the GRU reads for where the picture changes (0, 2, or 4 with the shift)."""
        return where_dims(self.where_trend, self.where_shift)

    @property
    def motion_dims(self) -> int:
        """Numbers for how far the picture moved: 4 with `motion`, 20 with its quadrants too
        (the whole thumbnail's 4, then each quadrant's, row by row), else 0."""
        return motion_dims(self.motion, self.motion_quadrants)

    @property
    def window_dims(self) -> int:
        """Numbers the GRU reads, the same at every step, about the whole window: where the
        picture changes (`where_dims`), then how far it moved (`motion_dims`)."""
        return self.where_dims + self.motion_dims

    @property
    def gru_window_dims(self) -> int:
        """How many of `window_dims` the first GRU reads (all but the motion's with
        `motion_scores`)."""
        return self.window_dims - self.motion_dims * self.motion_scores

    @property
    def thumbnail_size(self) -> int:
        """How many numbers of each feature vector are the thumbnail (`motion`), else 0."""
        return self.motion * self.motion

    @property
    def map_size(self) -> int:
        """How many numbers of each feature vector are the map (`where_trend`), else 0."""
        if not self.where_trend or self.map_shape is None:
            return 0
        rows, columns, channels = self.map_shape
        return rows * columns * channels

    @property
    def dims(self) -> tuple[int, int]:
        """(appearance_dims, change_dims)."""
        return self.appearance_dims, self.change_dims

    def as_dict(self) -> dict:
        """For metadata.json; a `raw` head is written exactly as format 1 wrote it."""
        data = asdict(self)
        data["gru_units"] = list(self.gru_units)
        data["input"] = self.input.value
        data["change_reference"] = self.change_reference.value
        data["change_basis"] = self.change_basis.value
        if self.where_trend:
            data["map_shape"] = list(self.map_shape) if self.map_shape else None
        else:  # heads without it are written as before
            del data["where_trend"], data["map_shape"]
        if not self.where_shift:  # as are heads without the shift
            del data["where_shift"]
        if not self.motion:  # and heads without the motion
            del data["motion"]
        if not self.motion_scores:  # and heads whose motion goes into the GRU
            del data["motion_scores"]
        if not self.motion_quadrants:  # and heads that read the whole thumbnail's alone
            del data["motion_quadrants"]
        if not self.motion_summary:  # and heads whose discriminant reads the 20 as they are
            del data["motion_summary"]
        if self.members == 1:  # and heads of one member
            del data["members"]
        if self.input is HeadInput.RAW:
            for key in (
                "input",
                "appearance_dims",
                "change_dims",
                "appearance_offset",
                "change_reference",
                "change_basis",
            ):
                data.pop(key)
        return data

    def describe(self, num_classes: int) -> str:
        """One line, e.g. "raw -> GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu) -> ..."."""
        parts = [self.input.value]
        if self.input is HeadInput.APPEARANCE_CHANGE:
            parts[0] += f" ({self.appearance_dims} + {self.change_dims}"
            if self.change_reference is ChangeReference.MEAN:
                parts[0] += ", change from the mean"
            if self.change_basis is ChangeBasis.CHANGES:
                parts[0] += ", change directions fitted on changes"
            if self.change_basis is ChangeBasis.BOTH:
                parts[0] += ", change directions of frames and of changes"
            if self.change_basis is ChangeBasis.DISCRIMINANT:
                parts[0] += ", change directions of frames and of classes"
            if self.change_basis is ChangeBasis.QUADRANTS:
                parts[0] += ", whole image's directions, then the quadrants' changes"
            if self.where_trend:
                parts[0] += " + 2 for where it changes"
            if self.where_shift:
                parts[0] += " + 2 for how far it moved"
            if self.motion:
                if not self.motion_scores:
                    parts[0] += f" + 4 for how far its {self.motion}x{self.motion} pixels moved"
            parts[0] += ")"
        stack = [f"GRU({u})" for u in self.gru_units]
        stack += [f"Dropout({self.dropout:g})", f"Dense({self.dense_units}, relu)"]
        if self.motion_scores:
            stack.append(
                f"Dense({num_classes}) + the fitted scores of how far its {self.motion}x"
                f"{self.motion} pixels moved ({self.motion_dims}"
                + (": the whole and each quadrant" if self.motion_quadrants else "")
                + (", summarised" if self.motion_summary else "")
                + ") -> softmax"
            )
        else:
            stack.append(f"Dense({num_classes}, softmax)")
        if self.members == 1:
            return " -> ".join(parts + stack)
        return " -> ".join(parts) + f" -> {self.members} x [" + " -> ".join(stack) + "] -> mean"

    @classmethod
    def from_dict(cls, data: dict | None) -> HeadConfig:
        """From metadata.json; ValueError for an input this version does not know."""
        values = {k: v for k, v in dict(data or {}).items() if k in cls.__dataclass_fields__}
        if "gru_units" in values:
            values["gru_units"] = tuple(int(u) for u in values["gru_units"])
        if values.get("map_shape") is not None:
            values["map_shape"] = tuple(int(v) for v in values["map_shape"])
        for key in SWITCHES:
            if key in values and not isinstance(values[key], bool):
                raise ValueError(f"{key} must be true or false")
        values["input"] = HeadInput(values.get("input", HeadInput.RAW.value))
        # format-2 heads written before the option measured change against the first frame
        values["change_reference"] = ChangeReference(
            values.get("change_reference", ChangeReference.FIRST.value)
        )
        # heads written before the option kept the frames' principal components
        values["change_basis"] = ChangeBasis(values.get("change_basis", ChangeBasis.FRAMES.value))
        if "motion" in values and (
            isinstance(values["motion"], bool) or not isinstance(values["motion"], int)
        ):
            raise ValueError("motion must be a whole number (the thumbnail's side)")
        if "members" in values and (
            isinstance(values["members"], bool) or not isinstance(values["members"], int)
        ):
            raise ValueError("members must be a whole number")
        kinds = {"dense_units": int, "appearance_dims": int, "change_dims": int}
        for key in (
            "dropout",
            "dense_units",
            "appearance_dims",
            "change_dims",
            "appearance_offset",
        ):
            if key in values:
                values[key] = kinds.get(key, float)(values[key])
        return cls(**values)


#: The Keras example's head: GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu), raw input.
SEED_HEAD = HeadConfig()
