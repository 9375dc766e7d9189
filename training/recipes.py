"""Training recipes: the Keras example's (`seed`) and ours (`default`).

A recipe says how a video becomes training windows, what the head reads and how it is
fitted. Both recipes keep the example's masked GRU family (`realtime.head.keras.build_head`:
GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu) -> softmax) and sample frames with the
runtime's `SamplingClock` at `fps`, so the frame spacing inside a window is the one recorded
in the model's metadata and used live.

`seed` reproduces the example: raw features in, the first 20 sampled frames of each video
(the example takes the first 20 consecutive frames of ~25 fps videos), Adam (lr 1e-3),
sparse categorical cross-entropy, 10 epochs, batch 32, `validation_split=0.3` (Keras takes
the *last* 30 % of the training set in file order, unshuffled), best-validation-loss
checkpoint. 99,909 trainable parameters for 2048-d features and 5 classes.

`default` (see docs/training.md for the measurements behind each choice):
- the head reads how each frame looks and how it differs from the mean of its window
  (`appearance+change`, 16 principal components each, fitted on the training frames;
  `change_reference` = mean), not the raw features: a head on raw features memorises what
  each training video looks like and never learns the order of what happens. Against the
  mean rather than the window's first frame, the reference carries the noise of 20 frames
  instead of one, which matters where the change is small (the start of an eased motion);
- during training only, each window's looks are moved by a random offset shaped like the
  differences between videos of one class (`appearance_offset` = 2 of them), so telling
  training videos apart by their looks does not pay and the order of change does;
- several windows per training video (every `stride` sampled frames, up to
  `windows_per_video`), so the head sees each action at the many phases a live stream shows;
- a validation split drawn per class and per video (all windows of a video on one side),
  instead of the last 30 % of a class-sorted list, which can hold whole classes the model
  then never trains on;
- batches of 8 windows (a few hundred windows make too few steps per epoch at 32: some runs
  never left the starting plateau), up to 100 epochs with early stopping on validation loss
  (patience 15, not before epoch 20), best-validation-loss weights kept;
- the class scores also read how far the picture moved over the window (`motion` = 56: a
  56 x 56 grayscale thumbnail ends each feature vector, `realtime.backbones.motion`; the
  window's summed phase-correlation steps, `realtime.head.motion`), through a linear
  discriminant fitted on the training windows and trusted as far as training videos it was
  not fitted on bear it out (`motion_scores`): where the class is which way the picture
  goes, the looks of a GRU cannot say it; where the motion says nothing, it weighs nothing.
  `--no-motion` gives the default before it, `--no-motion-scores` sends the motion into the
  GRU instead.
3,141 trainable parameters for 2048-d features and 5 classes (plus 67,869 fitted: the
input's principal components, the motion's scale (4) and discriminant (4 x 5 + 5), and the
training-only offset's spread).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from realtime.backbones.motion import MOTION_SIZE
from realtime.backbones.regions import Pooling
from realtime.core.errors import InputError
from realtime.head.config import SEED_HEAD, ChangeReference, HeadConfig, HeadInput


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
    #: with the head's `motion_scores`: the GRU trains with the motion's scores at 0 and they
    #: are added after training (the GRU does not learn to lean on them)
    motion_scores_after: bool = False
    head: HeadConfig = SEED_HEAD
    #: How the backbone pools its feature map (`--pooling` overrides); recorded with the
    #: backbone in metadata.json, where the runtime reads it.
    pooling: Pooling = Pooling.GLOBAL
    seed: int = 0

    @property
    def frames_needed(self) -> int:
        """Sampled frames per video the recipe reads (the rest are never decoded)."""
        return self.window + self.stride * (self.windows_per_video - 1)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["head"] = self.head.as_dict()
        data["pooling"] = self.pooling.value
        return data


SEED = Recipe("seed")
#: The default recipe's head: the example's GRU(16) -> GRU(8) -> Dropout -> Dense(8), reading
#: how each frame looks and how it differs from the window's mean (16 numbers each); the
#: class scores also get the calibrated scores of how far the picture moved over the window
#: (56 x 56 thumbnails after the features).
DEFAULT_HEAD = HeadConfig(
    input=HeadInput.APPEARANCE_CHANGE,
    appearance_dims=16,
    change_dims=16,
    appearance_offset=2.0,
    change_reference=ChangeReference.MEAN,
    motion=MOTION_SIZE,
    motion_scores=True,
)
DEFAULT = Recipe(
    "default",
    windows_per_video=8,
    stride=5,
    epochs=100,
    batch_size=8,
    stratified_validation=True,
    validation_split=0.25,
    early_stopping_patience=15,
    early_stopping_start=20,
    head=DEFAULT_HEAD,
)
RECIPES = {"seed": SEED, "default": DEFAULT}


def for_backbone(recipe: Recipe, backbone) -> Recipe:
    """`recipe` with what its head needs to know of `backbone`'s features. On `Pooling.MAP`
    features (`--pooling map`), an `appearance+change` head also reads where the picture
    changes and how far it moved (`where_trend`, `where_shift`: `realtime.head.where`) and
    gets the shape of the map that ends each feature vector. InputError for a `where_trend`
    head on features without a map, or a `motion` head on features without its thumbnails
    (`realtime.backbones.motion.WithMotion`)."""
    if recipe.head.motion and getattr(backbone, "motion", None) != recipe.head.motion:
        raise InputError(
            f"this recipe's head reads how far the picture moved: it needs features ending "
            f"with {recipe.head.motion}x{recipe.head.motion} thumbnails (--motion)"
        )
    shape = getattr(backbone, "map_shape", None)
    reads_input = recipe.head.input is HeadInput.APPEARANCE_CHANGE
    if not recipe.head.where_trend and not (shape is not None and reads_input):
        return recipe
    if shape is None:
        raise InputError(
            "this recipe's head reads where the picture changes: it needs --pooling map"
        )
    if not recipe.head.where_trend:  # what --pooling map turns on (docs/training.md)
        recipe = replace(recipe, head=replace(recipe.head, where_trend=True, where_shift=True))
    head = replace(recipe.head, map_shape=tuple(int(v) for v in shape))
    return replace(recipe, head=head)


def get_recipe(name: str, **overrides) -> Recipe:
    recipe = RECIPES[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(recipe, **overrides) if overrides else recipe
