"""The GRU head and the model directory that carries it.

The head is the Keras example's sequence model, defined here once for training, offline
evaluation and live use:

    features (window x D) + mask (window) -> [input] -> GRU(16) -> GRU(8) -> Dropout(0.4)
    -> Dense(8, relu) -> Dense(n_classes, softmax)

`HeadConfig.input` says what the first GRU reads at each step of a window:

- `raw` (the example's, `--recipe seed`; every model written before format 2): the frame's
  features x_t. 99,909 trainable parameters for 2048-d features and 5 classes.
- `appearance+change` (the default recipe's): [(x_t - mean) A, (x_t - x_ref) C], how the
  frame looks and how it differs from the window's reference x_ref, projected to
  `appearance_dims` and `change_dims` numbers. `change_reference` says what x_ref is: the
  mean of the window's valid frames (`mean`, the default recipe's) or its first valid frame
  (`first`, the default before; format-2 directories without the field). `mean`, A and C
  are fitted on the training frames (`fit_window_input`: principal components, one scale per
  part; `change_basis` says whose components C keeps: the frames' (`frames`, the default
  recipe's; every directory written before the field), those of the changes within the
  training windows (`changes`), or the frames' first `appearance_dims` and then the
  changes' (`both`)) and stored with the weights; they are never trained by
  gradient descent. A head on raw features sees each frame as it looks and must discover
  the order of change itself; with a few dozen training videos it memorises what each video
  looks like instead (docs/training.md).
  On `--pooling map` features (the whole image's average, then the feature map with 32
  numbers a position), the head also reads, at every step, the window's trend of where the
  picture changes (`where_trend`, `realtime.head.where`: 2 numbers, which way the place that
  changes most moves over the window, scaled by `where_scale`, fitted), whatever changes
  there, and with `where_shift` how far the picture itself moved over the window (2 more
  numbers: the map's displacement between consecutive frames, summed); A and C read the
  whole image's part only.
  With `motion` (`--motion`, any pooling), each feature vector ends with a G x G grayscale
  thumbnail of its frame (after the map, if any), and the head also reads, at every step,
  how far the picture moved over the window (`realtime.head.motion`: the phase correlation
  of consecutive valid frames' thumbnails, two estimates of the translation, summed: 4
  numbers, scaled with the where numbers). With `motion_scores` too, the GRU does not read
  those 4 numbers: the class scores do, through their linear discriminant fitted on the
  training windows and scaled by how far training videos it was not fitted on bear it out
  (`MotionScores`, `fit_motion_scores`, `calibrate_motion_scores`), added before the
  softmax.
  While training only, `WindowOffset` moves each window's appearance part by a random
  offset shaped like the differences between videos of one class (`appearance_offset`
  times their spread, `fit_appearance_spread`); at inference it does nothing.
  With `members` K > 1 (`--members`), K stacks (GRUs -> Dropout -> Dense -> scores, the
  motion's scores added to each) read the same input, each from its own initial weights;
  training holds out other videos for each (`training.train.held_out`) and fits each on its
  own loss; the head's probabilities are the mean of theirs. Layers of member m > 0 are
  named `m<m>_<name>` (`member_layer`).

A model directory holds:

- `head.weights.h5`: the head's weights (the input transform's included);
- `metadata.json`: labels, window length, image size, backbone identity and feature size,
  how frames were sampled in training (`sampling.fps`: the frame rate of the frames inside a
  window), the head's architecture (`head`: a `HeadConfig`) and the evaluation figures;
- `backbone.tflite` when the model was trained on a LiteRT backbone (so the directory is
  self-contained).

Inference: `build_head` is the single definition of the architecture; `NumpyHead` runs the
same math in NumPy (a Keras call costs milliseconds of framework overhead for ~0.1 MFLOP of
work), with the weights read from `head.weights.h5` without TensorFlow (as `build_head` lays
them out; or from a built Keras model), and `HeadStream` runs it
per frame over a sliding window. Every step of the first GRU starts with a product
u_t K + b of its input with the GRU's input kernel K; the input transform is linear, so
NumpyHead folds it into that product. For `appearance+change`, with K = [K_a; K_c]:

    u_t K + b = x_t (A K_a + C K_c) + (b - mean A K_a)  -  x_ref (C K_c)
              =            P_t                         -     R_ref

P_t and R_t depend on frame t alone: each frame is projected once, when it arrives, through
one (D x 6U) matrix, and a window's steps are P_t - R_ref, with R_ref the R of the window's
first frame or the mean of its frames' R (the projection is linear: the projection of the
mean is the mean of the projections), whichever frames the window holds as it slides.
A head reading where the picture changes keeps each frame's map beside its projection and
adds, to every step, the window's trend (and shift) times its rows of the kernel
(`where_kernel`). The trend depends on the whole window, so it is computed again as the
window slides; the shift is a sum of per-frame steps, so each frame's step from the frame
before is computed once, when it arrives, kept beside its projection (`link_step`), and the
window sums its frames' steps, the first's aside (bench/head_cost.py --map gives the cost).
The motion's steps are cached the same way, each frame's thumbnail beside its projection
(bench/head_cost.py --motion); with `motion_scores`, the window's sum goes through a (4 x C)
product into the scores instead of a (4 x 3U) one into every step.
A head of K members projects each frame once through all K members' kernels side by side
(D x 6UK) and runs the K stacks as one recurrence (`_Layers`: each layer reads only its own
member's layer below), so the per-frame calls are those of one member.
"""
