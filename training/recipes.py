"""Training recipes: the Keras example's (`seed`) and ours (`default`).

A recipe says how a video becomes training windows and how the head is fitted. Both recipes
use the same head (`realtime.model.build_head`, the example's GRU(16) -> GRU(8) ->
Dropout(0.4) -> Dense(8, relu) -> softmax) and sample frames with the runtime's
`SamplingClock` at `fps`, so the frame spacing inside a window is the one recorded in the
model's metadata and used live.

`seed` reproduces the example: the first 20 sampled frames of each video (the example takes
the first 20 consecutive frames of ~25 fps videos), Adam (lr 1e-3), sparse categorical
cross-entropy, 10 epochs, batch 32, `validation_split=0.3` (Keras takes the *last* 30 % of the
training set in file order, unshuffled), best-validation-loss checkpoint.

`default` changes, each measured on the synthetic set (see docs/training.md):
- several windows per training video (every `stride` sampled frames, up to `windows_per_video`),
  so the head sees each action at the many phases a live stream shows it;
- a validation split drawn per class and per video (all windows of a video on one side),
  instead of the last 30 % of a class-sorted list, which can hold whole classes the model then
  never trains on;
- up to 60 epochs with early stopping on validation loss (patience 10, not before epoch 20:
  a head that starts on a plateau gets time to leave it), best-validation-loss weights kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from realtime.model import SEED_HEAD


@dataclass(frozen=True)
class Recipe:
    name: str
    fps: float = 25.0  # sampling rate of the frames inside a window (SamplingClock)
    window: int = 20
    windows_per_video: int = 1
    stride: int = 10  # sampled frames between window starts
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    validation_split: float = 0.3
    stratified_validation: bool = False  # False: Keras's last-fraction split, as the example
    early_stopping_patience: int | None = None
    early_stopping_start: int = 0  # epochs before early stopping may stop training
    input_dropout: float = 0.0  # training-only dropout on the input features (not in the head)
    refit: bool = False  # after choosing the epoch count on validation, retrain on all videos
    head: dict = field(default_factory=lambda: dict(SEED_HEAD))
    seed: int = 0

    @property
    def frames_needed(self) -> int:
        """Sampled frames per video the recipe reads (the rest are never decoded)."""
        return self.window + self.stride * (self.windows_per_video - 1)

    def as_dict(self) -> dict:
        return asdict(self)


SEED = Recipe("seed")
DEFAULT = Recipe(
    "default",
    windows_per_video=8,
    stride=5,
    epochs=60,
    stratified_validation=True,
    validation_split=0.25,
    early_stopping_patience=10,
    early_stopping_start=20,
)
RECIPES = {"seed": SEED, "default": DEFAULT}


def get_recipe(name: str, **overrides) -> Recipe:
    recipe = RECIPES[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(recipe, **overrides) if overrides else recipe
