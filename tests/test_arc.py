"""Attentive Recurrent Comparators: the model's wiring, the pair sampler and Lake scoring."""
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from cab420utils import arc, training


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    m = arc.ARC(hidden=16, glimpses_per_image=3, glimpse_size=4, head_units=8)
    m([np.zeros((1, 12, 12), np.float32)] * 2)
    return m


def test_one_logit_per_pair_and_a_trace_of_alternating_glimpses(model):
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 12, 12), np.float32), rng.random((5, 12, 12), np.float32)
    assert tuple(model([a, b]).shape) == (5,)
    h, params = model.encode(a, b, return_params=True)
    assert tuple(h.shape) == (5, 16) and tuple(params.shape) == (5, 6, 3)   # 2 x 3 glimpses, (x, y, zoom) each
    # no bias, zero start: the first glimpse of every pair looks at the whole image, centred
    np.testing.assert_allclose(keras.ops.convert_to_numpy(params)[:, 0], 0.0)
    assert arc.attention_trace(model, a[0], b[0]).shape == (6, 3)


def test_the_comparison_depends_on_both_images_in_order(model):
    rng = np.random.default_rng(1)
    a, b = rng.random((4, 12, 12), np.float32), rng.random((4, 12, 12), np.float32)
    # make the glimpse placement depend on the state, so the test checks real wiring
    model.where.set_weights([rng.normal(size=(16, 3)).astype(np.float32)])
    ab, ba, aa = (keras.ops.convert_to_numpy(model([x, y])) for x, y in ((a, b), (b, a), (a, a)))
    assert not np.allclose(ab, aa) and not np.allclose(ab, ba)
    both = arc.pair_scores(model, a, b, batch_size=3)
    np.testing.assert_allclose(both, (ab + ba) / 2, rtol=1e-4, atol=1e-5)
    model.where.set_weights([np.zeros((16, 3), np.float32)])


def test_gradients_reach_the_attention_weights_and_the_controller(model):
    rng = np.random.default_rng(2)
    a, b = rng.random((4, 12, 12), np.float32), rng.random((4, 12, 12), np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model([a, b], training=True)))
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables)))
    where = [g for name, g in grads.items() if "where" in name]
    # every column, the zoom's too: it starts at 0, where a slope-0 |zoom| would leave its gradient at 0 for good
    assert where and all(g is not None and (np.abs(g.numpy()).sum(axis=0) > 0).all() for g in where)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads.values())


def test_bad_shapes_are_refused_with_a_message(model):
    with pytest.raises(ValueError, match="square images"):
        model([np.zeros((2, 12, 10), np.float32)] * 2)
    with pytest.raises(ValueError, match="same shape"):
        arc.pair_scores(model, np.zeros((2, 12, 12)), np.zeros((3, 12, 12)))
    with pytest.raises(ValueError, match="glimpses_per_image"):
        arc.ARC(glimpses_per_image=0)


def test_the_attention_scale_multiplies_every_glimpses_parameters_and_is_saved(tmp_path):
    rng = np.random.default_rng(5)
    a, b = rng.random((4, 12, 12), np.float32), rng.random((4, 12, 12), np.float32)
    w = rng.normal(size=(16, 3)).astype(np.float32)
    traces = {}
    for scale in (1.0, 0.3):
        keras.utils.set_random_seed(0)                    # the same initial weights for both
        m = arc.ARC(hidden=16, glimpses_per_image=3, glimpse_size=4, head_units=8, attention_scale=scale)
        m([a[:1], b[:1]])
        m.where.set_weights([w])
        traces[scale] = m
    h, params = traces[0.3].encode(a, b, return_params=True)
    _, unscaled = traces[1.0].encode(a, b, return_params=True)
    params, unscaled = keras.ops.convert_to_numpy(params), keras.ops.convert_to_numpy(unscaled)
    # the second glimpse follows the same first look (h after one glimpse of the whole of A): exactly 0.3 x W h
    np.testing.assert_allclose(params[:, 1], 0.3 * unscaled[:, 1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(params[:, 2:], 0.3 * unscaled[:, 2:], atol=1e-3)   # later ones differ: it looked elsewhere
    assert traces[0.3].get_config()["attention_scale"] == 0.3
    settings = dict(arc.comparator_settings("fast"), image_size=12, hidden=16, glimpses_per_image=3,
                    glimpse_size=4, head_units=8)
    assert settings["attention_scale"] == 0.3
    path = arc.save_comparator(traces[0.3], tmp_path / "arc.weights.h5", settings)
    loaded = arc.load_comparator(path, settings, 12)
    assert loaded.attention_scale == 0.3
    np.testing.assert_allclose(arc.pair_scores(loaded, a, b), arc.pair_scores(traces[0.3], a, b), rtol=1e-5)
    # an ARC saved before the scale was a setting is not reused for the course's settings: trained afresh
    old = {k: v for k, v in settings.items() if k != "attention_scale"}
    path = arc.save_comparator(traces[1.0], tmp_path / "old.weights.h5", old)
    assert arc.load_comparator(path, settings, 12) is None
    for bad in (0, -0.3, float("nan"), float("inf"), "fast", None, True):
        with pytest.raises(ValueError, match="attention_scale"):
            arc.ARC(attention_scale=bad)


def test_pairs_are_half_same_never_the_same_drawing_and_deterministic():
    ca, da, cb, db, same = arc.character_pairs(50, 20, 1000, np.random.default_rng(3))
    assert same.sum() == 500 and (ca[same] == cb[same]).all() and (ca[~same] != cb[~same]).all()
    assert (da != db).all() and da.max() < 20 and cb.max() < 50 and cb.min() >= 0
    again = arc.character_pairs(50, 20, 1000, np.random.default_rng(3))
    assert all((x == y).all() for x, y in zip((ca, da, cb, db, same), again))


def test_a_window_keeps_different_pairs_near_each_other_in_the_set():
    ca, _, cb, _, same = arc.character_pairs(100, 20, 4000, np.random.default_rng(4), window=5)
    gap = np.abs(ca[~same] - cb[~same])
    assert gap.min() >= 1 and gap.max() <= 5
    # at the ends of the set the partner is reflected inwards, never out of range
    assert cb.min() >= 0 and cb.max() <= 99 and ((ca == 0) & ~same).any()


def test_pairs_refuse_what_cannot_make_a_pair():
    with pytest.raises(ValueError, match="2 drawings"):
        arc.character_pairs(10, 1, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="window"):
        arc.character_pairs(10, 20, 8, np.random.default_rng(0), window=0)


def test_lake_scores_line_up_test_images_against_their_own_run(model):
    rng = np.random.default_rng(5)
    runs = [SimpleNamespace(train_images=rng.random((3, 12, 12), np.float32),
                            test_images=rng.random((2, 12, 12), np.float32)) for _ in range(2)]
    scores = arc.lake_scores(model, runs, batch_size=5)
    assert scores.shape == (2, 2, 3)
    expected = arc.pair_scores(model, runs[1].test_images[[1]], runs[1].train_images[[2]])
    np.testing.assert_allclose(scores[1, 1, 2], expected[0], rtol=1e-4, atol=1e-5)


def test_shifts_move_ink_by_at_most_the_limit_and_are_seeded():
    images = np.zeros((200, 9, 9), np.float32)
    images[:, 4, 4] = 1.0
    moved = arc.shift_images(images, 2, np.random.default_rng(0))
    where = np.argwhere(moved > 0)
    assert moved.shape == images.shape and len(where) == 200 and moved.sum() == 200
    assert np.abs(where[:, 1:] - 4).max() == 2 and len({tuple(p) for p in where[:, 1:]}) == 25
    np.testing.assert_array_equal(moved, arc.shift_images(images, 2, np.random.default_rng(0)))
    assert arc.shift_images(images, 0, np.random.default_rng(0)) is images


def test_modified_hausdorff_by_hand():
    a = np.zeros((6, 6)); a[1, 1] = 1
    b = np.zeros((6, 6)); b[1, 4] = b[1, 0] = 1
    # centred: a is the point (0, 0); b the points (0, -2) and (0, 2).
    # From a: 2 to its nearest; from b: mean(2, 2) = 2 -> 2.  Moving a drawing changes nothing.
    assert arc.modified_hausdorff(a, b) == pytest.approx(2.0)
    assert arc.modified_hausdorff(b, a) == pytest.approx(2.0) and arc.modified_hausdorff(a, a) == 0
    assert arc.modified_hausdorff(np.roll(b, 1, axis=0), b) == 0
    c = np.zeros((6, 6)); c[1, 1] = c[1, 2] = c[1, 5] = 1     # centred: (0, -5/3), (0, -2/3), (0, 7/3)
    # from c to b: (1/3 + 4/3 + 1/3) / 3 = 2/3; from b to c: (1/3 + 1/3) / 2 = 1/3 -> 2/3
    assert arc.modified_hausdorff(c, b) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="blank"):
        arc.modified_hausdorff(a, np.zeros((6, 6)))
    runs = [SimpleNamespace(train_images=np.stack([a, b]), test_images=np.stack([b]))]
    np.testing.assert_allclose(arc.hausdorff_scores(runs), [[[-2.0, 0.0]]])


def test_a_trained_comparator_is_saved_and_reused_only_with_the_same_settings(tmp_path):
    keras.utils.set_random_seed(1)
    images = np.random.default_rng(7).random((6, 3, 12, 12)).astype(np.float32)
    model = arc.ARC(hidden=8, glimpses_per_image=2, glimpse_size=4, head_units=4)
    model([np.zeros((1, 12, 12), np.float32)] * 2)
    validation = arc.pair_images(images, arc.character_pairs(6, 3, 10, np.random.default_rng(8)))
    losses, curve = arc.train_comparator(model, images, steps=3, batch=4, learning_rate=1e-2, clipnorm=1.0,
                                         window=2, rng=np.random.default_rng(9), validation=validation,
                                         evaluate_every=2)
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert [c["step"] for c in curve] == [2, 3] and {"validation accuracy", "validation ROC AUC"} <= set(curve[0])
    settings = {"hidden": 8, "steps": 3, "window": (2,)}
    path = arc.save_comparator(model, tmp_path / "m" / "arc.weights.h5", settings)
    again = arc.load_comparator(path, dict(settings), 12)
    a, b, _ = validation
    np.testing.assert_allclose(arc.pair_scores(again, a, b), arc.pair_scores(model, a, b), rtol=1e-5, atol=1e-6)
    assert arc.load_comparator(path, {**settings, "steps": 4}, 12) is None       # other settings: train anew
    assert arc.load_comparator(tmp_path / "none.weights.h5", settings, 12) is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]   # nothing half-written left
    with pytest.raises(ValueError, match="weights.h5"):
        arc.save_comparator(model, tmp_path / "arc.h5", settings)
    # a save that fails half-way leaves no card vouching for whatever weights are there
    def fail(*args, **kwargs):
        raise OSError("disk full")

    model.save_weights = fail
    with pytest.raises(OSError, match="disk full"):
        arc.save_comparator(model, path, {**settings, "steps": 5})
    assert arc.load_comparator(path, settings, 12) is None
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


def test_a_saved_comparator_loads_with_the_settings_on_its_card(tmp_path):
    """For a study of a comparator trained elsewhere (the full profile's): whatever its settings, with clear
    errors for a missing file, weights without their card, and a card that is not one."""
    keras.utils.set_random_seed(2)
    model = arc.ARC(hidden=8, glimpses_per_image=2, glimpse_size=4, head_units=4)
    model([np.zeros((1, 12, 12), np.float32)] * 2)
    settings = {"hidden": 8, "steps": 30_535, "image_size": 12}
    path = arc.save_comparator(model, tmp_path / "08-arc.weights.h5", settings)
    loaded, card = arc.saved_comparator(path)
    assert card == {"hidden": 8, "steps": 30_535, "image_size": 12} and type(loaded) is arc.ARC
    a = np.random.default_rng(3).random((5, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(arc.pair_scores(loaded, a, a[::-1]), arc.pair_scores(model, a, a[::-1]), rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="no saved comparator's weights at .*absent.weights.h5"):
        arc.saved_comparator(tmp_path / "absent.weights.h5")
    path.with_name("08-arc.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a comparator's settings card"):
        arc.saved_comparator(path)
    path.with_name("08-arc.json").write_text('{"settings": {"hidden": 8}}')   # no image size
    with pytest.raises(ValueError, match="with its image size"):
        arc.saved_comparator(path)
    with pytest.raises(ValueError, match=r"\*.weights.h5, got 08-arc.h5"):
        arc.saved_comparator(tmp_path / "08-arc.h5")
    path.with_name("08-arc.json").unlink()
    with pytest.raises(FileNotFoundError, match="settings card"):
        arc.saved_comparator(path)


def test_comparator_settings_name_the_profile():
    fast, full = arc.comparator_settings("fast"), arc.comparator_settings("full")
    assert fast["steps"] < full["steps"] and fast["image_size"] == full["image_size"] == 32
    with pytest.raises(ValueError, match="profile"):
        arc.comparator_settings("quick")


def test_later_notebooks_get_notebook_08s_arc_or_a_stand_in(tmp_path, monkeypatch):
    from cab420utils import data

    monkeypatch.setenv("CAB420_BUILD", str(tmp_path))
    fake = data.OmniglotSet(np.random.default_rng(0).random((120, 20, 12, 12)).astype(np.float32),
                            np.arange(120), None, "fake")
    monkeypatch.setattr(data, "load_omniglot_background", lambda size=None: (fake, "a fake set"))
    real_settings = arc.comparator_settings
    tiny = dict(image_size=12, glimpse_size=4, glimpses_per_image=2, hidden=8)     # the wiring, not the size
    monkeypatch.setattr(arc, "comparator_settings", lambda profile, rehearsal=False: {**real_settings(profile), **tiny})
    stand_in, where = arc.notebook08_comparator("fast", seed=5, quick_steps=2)
    assert "stand-in" in where and "2 steps" in where
    assert not (tmp_path / "models").exists()                     # a stand-in is never saved as 08's ARC
    settings = arc.comparator_settings("fast")
    arc.save_comparator(stand_in, tmp_path / "models" / arc.SAVED_NAME, dict(settings, seed=5))
    loaded, where = arc.notebook08_comparator("fast", seed=5, quick_steps=2)
    assert "loaded" in where
    a = np.random.default_rng(1).random((3, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(arc.pair_scores(loaded, a, a[::-1]), arc.pair_scores(stand_in, a, a[::-1]), rtol=1e-5)
    _, where = arc.notebook08_comparator("fast", seed=6, quick_steps=2)    # another seed: not 08's model
    assert "stand-in" in where


def test_a_rehearsal_of_the_arc_keeps_its_size_and_cuts_its_steps():
    full, rehearsed = arc.comparator_settings("full"), arc.comparator_settings("full", rehearsal=True)
    assert rehearsed["hidden"] == full["hidden"] == 512 and rehearsed["max_shift"] == full["max_shift"]
    assert rehearsed["steps"] == 8000 // 20 and rehearsed["evaluate_every"] == rehearsed["steps"] // 2
    assert arc.comparator_settings("fast", rehearsal=True)["hidden"] == 128


def test_convarc_glimpses_feature_maps_trains_and_is_saved_and_rebuilt_as_a_convarc(tmp_path, monkeypatch):
    from cab420utils import data

    settings = arc.comparator_settings("full", kind="convarc")
    assert settings["kind"] == "convarc" and settings["glimpse_size"] == 4 and settings["hidden"] == 512
    assert "kind" not in arc.comparator_settings("full")          # notebook 08's settings stay as they were
    with pytest.raises(ValueError, match="kind"):
        arc.comparator_settings("full", kind="siamese")
    tiny = {**settings, "image_size": 12, "hidden": 8, "glimpses_per_image": 2, "filters": (4, 6), "steps": 2,
            "batch": 4, "validation_characters": 2}
    keras.utils.set_random_seed(2)
    model = arc.build_comparator(tiny)
    assert isinstance(model, arc.ConvARC) and model.filters == (4, 6)
    a = np.random.default_rng(4).random((3, 12, 12)).astype(np.float32)
    h, params = model.encode(a, a[::-1], return_params=True)
    assert tuple(h.shape) == (3, 8) and tuple(params.shape) == (3, 4, 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(params)[:, 0], 0.0)    # first look: the whole map

    monkeypatch.setenv("CAB420_BUILD", str(tmp_path))
    fake = data.OmniglotSet(np.random.default_rng(0).random((20, 20, 12, 12)).astype(np.float32),
                            np.arange(20), None, "fake")
    monkeypatch.setattr(data, "load_omniglot_background", lambda size=None: (fake, "a fake set"))
    trained, where = arc.trained_comparator(tiny, seed=3)
    assert "ConvARC was not in" in where and "saved" in where
    assert (tmp_path / "models" / "09-convarc.weights.h5").is_file()
    assert not (tmp_path / "models" / arc.SAVED_NAME).exists()     # never mistaken for notebook 08's ARC
    loaded, where = arc.trained_comparator(tiny, seed=3)
    assert "loaded" in where and isinstance(loaded, arc.ConvARC)
    np.testing.assert_allclose(arc.pair_scores(loaded, a, a[::-1]), arc.pair_scores(trained, a, a[::-1]), rtol=1e-5)
    with pytest.raises(ValueError, match="two convolutions"):
        arc.ConvARC(filters=(8,))


class FakeClock:
    """A clock that moves ``tick`` seconds each time it is read (and ``first`` more on the read after the first
    step, as if compiling took that long): a training's timing without waiting for it."""

    def __init__(self, tick: float, first: float = 0.0):
        self.now, self.tick, self.first, self.reads = 0.0, tick, first, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.tick + (self.first if self.reads == 2 else 0.0)
        return self.now


def test_a_time_cap_plans_the_steps_that_fit_after_timing_the_first():
    cap = arc.TimeCap(100, 1000, timed=5, clock=FakeClock(1.0, first=9.0))   # step 1 at 10 s, then 1 s a step
    assert [cap.plan(step) for step in range(1, 5)] == [1000] * 4
    # at step 5: 14 s gone, 1 s a step since the first, 86 s left, 10% spare: 77 more steps
    assert cap.plan(5) == 5 + 77
    assert [cap.plan(step) for step in range(6, 11)] == [82] * 5
    # at a tenth of the cap more (step 11, 20 s) it times the steps since: 80 s left, 72 more
    assert cap.plan(11) == 11 + 72
    cap = arc.TimeCap(100, 50, timed=5, clock=FakeClock(1.0, first=9.0))
    assert [cap.plan(step) for step in range(1, 50)] == [50] * 49          # a budget that fits is kept
    late = arc.TimeCap(3, 1000, timed=100, clock=FakeClock(1.0))
    assert [late.plan(step) for step in range(1, 5)] == [1000, 1000, 1000, 4]   # past the cap: stop there
    for bad in (0, -1, float("nan"), float("inf"), "soon", True, None):
        with pytest.raises(ValueError, match="time cap"):
            arc.TimeCap(bad, 1000, timed=5)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="budget of at least 1 step"):
            arc.TimeCap(100, bad, timed=5)


class ChangingClock:
    """A clock that moves ``ticks[0]`` seconds a read for its first ``until`` reads, then ``ticks[1]``: a machine
    that speeds up (something ran beside the first steps) or slows down (something started later)."""

    def __init__(self, ticks: tuple[float, float], until: int):
        self.now, self.ticks, self.until, self.reads = 0.0, ticks, until, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.ticks[0] if self.reads <= self.until else self.ticks[1]
        return self.now


def capped_run(cap: arc.TimeCap) -> tuple[int, float, list[int]]:
    """Steps as a training takes them under ``cap`` (one clock read a step): the steps trained, the seconds they
    took, and every plan that differed from the one before."""
    plans, step = [cap.budget], 0
    while step < plans[-1]:
        step += 1
        if (planned := cap.plan(step)) != plans[-1]:
            plans.append(planned)
    return step, cap.clock.now - cap.started, plans


def test_a_time_cap_plans_again_so_slow_first_steps_do_not_leave_the_cap_part_used():
    # 2 s a step while something runs beside the first 50, then 1 s: timed once, the plan would end near 500 s
    cap = arc.TimeCap(1000, 10_000, timed=20, clock=ChangingClock((2.0, 1.0), until=50))
    steps, seconds, plans = capped_run(cap)
    assert plans[1] < 500                                   # the first plan, from the slow steps
    assert 0.97 * 1000 <= seconds <= 1000 and steps == plans[-1]
    assert plans[1:] == sorted(plans[1:]) and plans[-1] <= 10_000    # each plan longer, never past the budget


def test_a_time_cap_plans_again_when_the_machine_slows_down_and_lands_before_the_cap():
    cap = arc.TimeCap(1000, 10_000, timed=20, clock=ChangingClock((1.0, 3.0), until=300))
    steps, seconds, plans = capped_run(cap)
    assert plans[1] > 800 and plans[-1] < plans[1]          # planned at 1 s a step, then shortened
    assert steps == plans[-1] and 0.95 * 1000 <= seconds <= 1000   # it lands on its plan, not on the hard stop
    # a budget that fits however the pace moves is trained whole
    cap = arc.TimeCap(1000, 200, timed=20, clock=ChangingClock((1.0, 2.0), until=100))
    assert capped_run(cap)[0] == 200


def test_a_failed_check_says_when_a_time_cap_cut_the_training_short():
    assert arc.cut_short(8000, 8000, None) == "" and arc.cut_short(8000, 8000, 140) == ""
    note = arc.cut_short(948, 60000, 300)
    assert "CAB420_ARC_SECONDS=300" in note and "948 of its 60,000 steps" in note and "more time" in note
    assert "a time cap" in arc.cut_short(10, 20, None)


def test_a_capped_training_trains_fewer_steps_and_lands_its_schedule_at_the_new_end(monkeypatch):
    keras.utils.set_random_seed(1)
    images = np.random.default_rng(7).random((6, 3, 12, 12)).astype(np.float32)
    model = arc.ARC(hidden=8, glimpses_per_image=2, glimpse_size=4, head_units=4)
    model([np.zeros((1, 12, 12), np.float32)] * 2)
    plans = []

    class Plan(training.CosinePlan):                 # every plan the training makes, kept to look at
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            plans.append(self)

    monkeypatch.setattr(arc, "CosinePlan", Plan)
    # 0.1 s a step: after the 50 timed steps (5 s) the 10 s cap leaves room for about 45 more, not 350; planned
    # again at every tenth of the cap, the training ends close to it
    losses, curve = arc.train_comparator(model, images, steps=400, batch=4, learning_rate=1e-2, clipnorm=1.0,
                                         window=2, rng=np.random.default_rng(9), evaluate_every=1000,
                                         seconds=10, clock=FakeClock(0.1))
    assert 95 <= len(losses) <= 99 and np.isfinite(losses).all()
    assert curve[-1]["step"] == len(losses)                       # the last point is where it stopped
    assert plans[0].steps == 400 and len(plans) > 2               # the budget, then a plan at every tenth
    assert plans[-1].steps == len(losses)                         # the last plan is where it stopped
    assert plans[-1].rate(len(losses)) == pytest.approx(0.0, abs=1e-12)    # its cosine landed there
    rates = [plan.rate(plan.since) for plan in plans[1:]]         # each new plan starts at the rate of the last
    assert rates == pytest.approx([before.rate(plan.since) for before, plan in zip(plans, plans[1:])])
    # a cap that the budget fits trains as no cap does: the rates it sets are cosine_adam's, step by step
    start = model.get_weights()
    trained = []
    for seconds in (None, 1000):
        model.set_weights(start)
        losses, _ = arc.train_comparator(model, images, steps=60, batch=4, learning_rate=1e-2, clipnorm=1.0,
                                         window=2, rng=np.random.default_rng(9), evaluate_every=1000,
                                         seconds=seconds, clock=FakeClock(0.01))
        trained.append((losses, model.get_weights()))
    (free, free_weights), (capped, capped_weights) = trained
    assert len(free) == len(capped) == 60 and capped == pytest.approx(free, rel=1e-5)
    for mine, theirs in zip(capped_weights, free_weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)
