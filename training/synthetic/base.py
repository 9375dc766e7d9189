"""What every synthetic generator shares: classes per kind, state paths, video files.

A generator draws videos of one *scene* (its appearance: a shape, a texture, a kind of
sprite) whose *state variables* (size, colour, zoom, ...; each a number in [0, 1]) either
stay put or move from one end of their range to the other. A *dynamic* is one variable
moving one way (`grow` = size rising); every dynamic has a mirror (`shrink`) that shows the
same frames in the opposite order. Three kinds of set come out of that:

- `order`: the classes are the dynamics (two mirror pairs); the appearance is drawn at random.
  Each class shows the same distribution of single frames as its mirror, so only the order
  of the frames tells the pair apart.
- `appearance`: the classes are appearances; each video's dynamic is drawn at random among
  all dynamics and `still`, so order says nothing about the class.
- `mixed`: the classes are (appearance, dynamic) pairs, `still` included; neither cue alone
  is enough. A `still` video holds every variable at a value drawn uniformly over the range,
  so a single frame does not tell `still` from a moving class.

A video's endpoints are drawn near the ends of the range (low in [0, 0.15], high in
[0.85, 1]); variables that do not move are held at a uniform value. The random draws of a
video do not depend on its direction, and a falling video is the rising one played
backwards (everything else that moves with time included), so a class and its mirror drawn
with the same seed show the same frames in reverse order, up to per-frame noise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

KINDS = ("order", "appearance", "mixed")
STILL = "still"


@dataclass(frozen=True)
class Dynamic:
    """One state variable moving one way (`rising`) or the other."""

    name: str
    variable: str
    rising: bool


@dataclass(frozen=True)
class Plan:
    """What one video shows: an appearance and a dynamic (None: still)."""

    appearance: str
    dynamic: Dynamic | None


@dataclass(frozen=True)
class Encoding:
    """How a generator's videos are written."""

    fourcc: str
    extension: str
    frame_rates: tuple[float, ...]
    width: int
    height: int
    min_frames: int
    max_frames: int


class Generator(ABC):
    """A family of synthetic videos; subclasses say how a scene looks and how it is drawn."""

    name: str
    encoding: Encoding
    appearances: tuple[str, ...]
    #: variable -> (name of the rising dynamic, name of the falling one)
    variables: dict[str, tuple[str, str]]
    #: the mixed set: these appearances x these dynamics (STILL allowed)
    mixed_appearances: tuple[str, ...]
    mixed_dynamics: tuple[str, ...]

    @property
    def dynamics(self) -> dict[str, Dynamic]:
        out = {}
        for variable, (up, down) in self.variables.items():
            out[up] = Dynamic(up, variable, True)
            out[down] = Dynamic(down, variable, False)
        return out

    def classes(self, kind: str) -> tuple[str, ...]:
        if kind == "order":
            return tuple(sorted(self.dynamics))
        if kind == "appearance":
            return tuple(sorted(self.appearances))
        if kind == "mixed":
            return tuple(f"{a}_{d}" for a in self.mixed_appearances for d in self.mixed_dynamics)
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def plan(self, kind: str, label: str, rng: np.random.Generator) -> Plan:
        """The appearance and dynamic of one video of class `label` in a set of `kind`."""
        if label not in self.classes(kind):
            raise ValueError(f"{self.name} has no {kind} class {label!r}")
        dynamics = self.dynamics
        if kind == "order":
            return Plan(self.appearances[int(rng.integers(len(self.appearances)))], dynamics[label])
        if kind == "appearance":
            choices = [None, *(dynamics[name] for name in sorted(dynamics))]
            return Plan(label, choices[int(rng.integers(len(choices)))])
        appearance = next(a for a in self.mixed_appearances if label.startswith(a + "_"))
        dynamic = label[len(appearance) + 1 :]
        return Plan(appearance, None if dynamic == STILL else dynamics[dynamic])

    def states(self, plan: Plan, n_frames: int, rng: np.random.Generator) -> list[dict]:
        """Per frame of the rising direction, every variable's value in [0, 1]."""
        paths = {}
        progress = self.progress(n_frames)
        for variable in self.variables:
            low, high = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
            held = rng.uniform(0.0, 1.0)
            if plan.dynamic is not None and plan.dynamic.variable == variable:
                paths[variable] = low + (high - low) * progress  # rising
            else:
                paths[variable] = np.full(n_frames, held)
        return [{v: float(p[i]) for v, p in paths.items()} for i in range(n_frames)]

    def progress(self, n_frames: int) -> np.ndarray:
        """Per frame of the rising direction, how far a moving variable has gone (0 to 1 of
        its way from low to high): `ease` over the video's frames."""
        return self.ease(np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1))

    def ease(self, s: np.ndarray) -> np.ndarray:
        """How a moving variable progresses over the video (linear unless overridden)."""
        return s

    def render(
        self,
        plan: Plan,
        n_frames: int,
        rng: np.random.Generator,
        width: int | None = None,
        height: int | None = None,
    ) -> list[np.ndarray]:
        """The BGR frames of one video."""
        width = width or self.encoding.width
        height = height or self.encoding.height
        scene = self.scene(plan.appearance, rng, width, height)
        timeline = list(enumerate(self.states(plan, n_frames, rng)))
        if plan.dynamic is not None and not plan.dynamic.rising:
            timeline.reverse()  # the mirror: the same frames, played backwards
        return [self.draw(scene, state, index, rng) for index, state in timeline]

    @abstractmethod
    def scene(self, appearance: str, rng: np.random.Generator, width: int, height: int):
        """Everything fixed for one video (background, placement, colours...)."""

    @abstractmethod
    def draw(
        self, scene, state: dict[str, float], index: int, rng: np.random.Generator
    ) -> np.ndarray:
        """A BGR uint8 frame of `scene` with its variables at `state`; `index` is the frame's
        place in the rising direction (a mirror video draws its frames in reverse), for
        anything else that moves with time. Per-frame noise comes from `rng`."""


def hue(rng: np.random.Generator, low=30, high=230, grey=0.0) -> np.ndarray:
    """A random BGR colour, each channel uniform in [low, high), pulled towards grey by
    `grey` (0: as drawn, 1: grey)."""
    colour = rng.uniform(low, high, 3)
    return colour * (1 - grey) + colour.mean() * grey


def bgr(colour) -> tuple[float, float, float]:
    """A colour as OpenCV's drawing functions take it."""
    return tuple(float(c) for c in colour)


def pt(p) -> tuple[int, int]:
    """A point (x, y) rounded to the pixel, as OpenCV's drawing functions take it."""
    return int(round(p[0])), int(round(p[1]))


def centre_square(width: int, height: int) -> tuple[int, int, int]:
    """(cx, cy, side) of the centre square the model sees after its centre crop."""
    return width // 2, height // 2, min(width, height)


def write_video(path: Path, frames, fps: float, fourcc: str = "MJPG") -> Path:
    """Write BGR frames with OpenCV; OSError if the codec or the file cannot be opened."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {path} with the {fourcc} codec")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
