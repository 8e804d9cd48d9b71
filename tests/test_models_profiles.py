"""The backbone, the Siamese wrappers, the profile switch and the recorder."""
import json

import keras
import numpy as np
import pytest

import cab420utils
from cab420utils import models, profiles, results, sampling


def test_backbone_has_the_slides_parameter_count():
    assert models.vgg_backbone().count_params() == models.SLIDES_PARAMETER_COUNT == 429_176


def test_normalised_backbone_gives_unit_vectors():
    e = models.embed(models.vgg_backbone(8, normalize=True), np.random.default_rng(0).integers(0, 255, (5, 28, 28)))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)


def test_siamese_models_are_symmetric():
    keras.utils.set_random_seed(0)
    backbone = models.vgg_backbone(8)
    x = np.random.default_rng(0).integers(0, 255, (6, 28, 28, 1)).astype(np.float32)
    for model in (models.siamese_bce_model(backbone), models.siamese_distance_model(backbone)):
        ab = model.predict([x[:3], x[3:]], verbose=0)
        ba = model.predict([x[3:], x[:3]], verbose=0)
        np.testing.assert_allclose(ab, ba, rtol=1e-5, atol=1e-6)
    d = models.triplet_model(backbone).predict([x[:2], x[:2], x[2:4]], verbose=0)
    assert d.shape == (2, 2) and np.allclose(d[:, 0], 0, atol=1e-3)


def first_epoch_loss(seed):
    cab420utils.profiles.seed_everything(seed)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (200, 28, 28)).astype(np.uint8), np.repeat(np.arange(4), 50)
    model = models.siamese_bce_model(models.vgg_backbone(8, filters=(4, 8), dense=(16,)))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(sampling.PairDataset(x, y, 128, 32, seed=seed), epochs=1, verbose=0)
    return history.history["loss"][0]


def test_same_seed_same_first_epoch_loss():
    assert first_epoch_loss(3) == pytest.approx(first_epoch_loss(3), rel=1e-6)


def test_profile_switch(monkeypatch):
    monkeypatch.setenv("CAB420_PROFILE", "full")
    assert profiles.resolve_profile()[0] == "full"
    monkeypatch.setenv("CAB420_PROFILE", "fast")
    run = profiles.setup("00-test", "Test", quiet=True)
    assert run.profile == "fast" and run.pick(fast=1, full=2) == 1
    monkeypatch.setenv("CAB420_PROFILE", "auto")
    assert profiles.resolve_profile()[0] == ("full" if profiles.visible_gpus() else "fast")
    monkeypatch.setenv("CAB420_PROFILE", "quick")
    with pytest.raises(ValueError, match="Unknown profile 'quick'.*fast, full, auto"):
        profiles.setup("00-test", "Test", quiet=True)


def test_recorder_writes_json_and_embeddings(build_dir, monkeypatch):
    monkeypatch.setenv("CAB420_PROFILE", "fast")
    run = profiles.setup("00-test", "Test notebook", quiet=True)
    emb, labels = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    path = results.record_results(run, {"P@1": 0.9, "ROC AUC": np.float32(0.95)}, references={"P@1": "raw 0.81"},
                                  floors={"ROC AUC": 0.9}, embeddings=emb, labels=labels)
    record = json.loads(path.read_text())
    assert path == build_dir / "results" / "00-test.json"
    assert record["metrics"] == {"P@1": 0.9, "ROC AUC": pytest.approx(0.95)}
    assert record["profile"] == "fast" and record["floors"] == {"ROC AUC": 0.9} and record["seconds"] >= 0
    saved = np.load(build_dir / "results" / "00-test" / "embeddings.npz")
    np.testing.assert_allclose(saved["embeddings"], emb, rtol=1e-6)
    assert results.load_results("00-")["title"] == "Test notebook"
    with pytest.raises(ValueError, match="labels"):
        results.record_results(run, {}, embeddings=emb, labels=labels[:3])


def test_cosine_adam_decays_to_zero_and_refuses_no_steps():
    from cab420utils import training
    opt = training.cosine_adam(1e-2, steps=10, clipnorm=1.0)
    schedule = opt._learning_rate if hasattr(opt, "_learning_rate") else opt.learning_rate
    assert float(schedule(0)) == pytest.approx(1e-2)
    assert float(schedule(10)) == pytest.approx(0.0, abs=1e-9)
    assert opt.clipnorm == 1.0
    with pytest.raises(ValueError, match="steps"):
        training.cosine_adam(1e-3, steps=0)


def test_a_cosine_plan_gives_cosine_adams_rates_and_carries_on_without_a_jump_when_planned_again():
    from cab420utils import training
    plan = training.CosinePlan(1e-2, steps=100)
    keras_rates = training.cosine_adam(1e-2, steps=100)._learning_rate
    for step in (0, 1, 37, 99, 100, 150):
        assert plan.rate(step) == pytest.approx(float(keras_rates(step)), rel=1e-5, abs=1e-9)
    now = plan.rate(4)                                         # 1e-2 * (1 + cos(pi * 4 / 100)) / 2
    shorter = plan.replanned(4, 10)
    assert shorter.rate(4) == pytest.approx(now)              # no jump at the re-plan
    assert shorter.rate(7) == pytest.approx(1e-2 * (1 + np.cos(np.pi * 0.52)) / 2)   # 96% of the cosine in 6 steps
    assert shorter.rate(10) == pytest.approx(0.0, abs=1e-12) and shorter.rate(12) == pytest.approx(0.0, abs=1e-12)
    longer = plan.replanned(4, 1000)                           # time to spare: the rest of the cosine over 996 steps
    rates = [longer.rate(step) for step in (4, 100, 500, 1000)]
    assert rates[0] == pytest.approx(now) and rates[1] > rates[2] > rates[3] == pytest.approx(0.0, abs=1e-12)
    assert rates[1] > plan.rate(50)
    again = shorter.replanned(5, 20)                           # a re-plan of a re-plan
    assert again.rate(5) == pytest.approx(shorter.rate(5)) and again.rate(20) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="already taken 4"):
        plan.replanned(4, 3)
    for bad in (dict(steps=0), dict(steps=2.5), dict(steps=10, since=11), dict(steps=10, progress=1.5)):
        with pytest.raises(ValueError, match="cosine plan"):
            training.CosinePlan(1e-2, **bad)


def test_a_time_cap_comes_from_the_environment_and_is_announced(monkeypatch, capsys):
    monkeypatch.delenv("CAB420_ARC_SECONDS", raising=False)
    assert profiles.setup("00-test", "Test", profile="full", quiet=True).arc_seconds is None
    monkeypatch.setenv("CAB420_ARC_SECONDS", "140")
    run = profiles.setup("00-test", "Test", profile="full")
    assert run.arc_seconds == 140.0 and "TIME CAP (CAB420_ARC_SECONDS=140)" in capsys.readouterr().out
    assert profiles.setup("00-test", "Test", quiet=True, arc_seconds=30).arc_seconds == 30.0
    for bad in ("0", "-3", "two minutes", "nan", "inf"):
        monkeypatch.setenv("CAB420_ARC_SECONDS", bad)
        with pytest.raises(ValueError, match="a number above 0"):
            profiles.setup("00-test", "Test", quiet=True)
    monkeypatch.setenv("CAB420_ARC_SECONDS", "")
    assert profiles.setup("00-test", "Test", quiet=True).arc_seconds is None
    for bad in (0, True):
        with pytest.raises(ValueError, match="arc_seconds"):
            profiles.setup("00-test", "Test", quiet=True, arc_seconds=bad)


def test_budget_is_the_profiles_own_outside_a_rehearsal(monkeypatch):
    monkeypatch.delenv("CAB420_REHEARSAL", raising=False)
    fast = profiles.setup("00-test", "Test", profile="fast", quiet=True)
    full = profiles.setup("00-test", "Test", profile="full", quiet=True)
    assert not fast.rehearsal and not full.rehearsal
    assert fast.budget(fast=900, full=20_000) == 900 and full.budget(fast=900, full=20_000, least=30) == 20_000
    assert full.pick(fast=(16, 32), full=(32, 64)) == (32, 64)


def test_a_rehearsal_keeps_the_settings_and_cuts_the_budgets(monkeypatch, capsys):
    monkeypatch.setenv("CAB420_REHEARSAL", "1")
    run = profiles.setup("00-test", "Test", profile="full")
    assert "REHEARSAL (CAB420_REHEARSAL=1)" in capsys.readouterr().out
    assert run.rehearsal and run.profile == "full"
    assert run.pick(fast=(0, 1, 2), full=(0, 1, 2, 3, 4)) == (0, 1, 2, 3, 4)   # every setting: the full profile's
    assert run.budget(fast=900, full=20_000) == 900 // profiles.REHEARSAL_DIVISOR == 45
    assert run.budget(fast=100, full=500, least=30) == 30                       # covers 20 frozen steps and more
    assert run.budget(fast=3, full=30) == 1
    assert profiles.setup("00-test", "Test", profile="full", quiet=True, rehearsal=False).budget(fast=3, full=30) == 30
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            run.budget(fast=bad, full=10)
    monkeypatch.setenv("CAB420_REHEARSAL", "maybe")
    with pytest.raises(ValueError, match="CAB420_REHEARSAL='maybe'"):
        profiles.setup("00-test", "Test", quiet=True)
    for off in ("", "0", "no"):
        monkeypatch.setenv("CAB420_REHEARSAL", off)
        assert not profiles.setup("00-test", "Test", quiet=True).rehearsal


def test_a_rehearsals_results_say_so(build_dir, monkeypatch):
    import json

    import cab420utils

    run = profiles.setup("00-rehearsed", "Rehearsed", profile="full", quiet=True, rehearsal=True)
    path = cab420utils.record_results(run, {"P@1": 0.1})
    assert json.loads(path.read_text())["rehearsal"] is True


def test_a_headline_names_recorded_metrics(build_dir):
    import json

    import cab420utils

    run = profiles.setup("00-headline", "Headline", profile="fast", quiet=True)
    metrics = {"P@1": 0.85, "P@1 (raw pixels)": 0.81}
    path = cab420utils.record_results(run, metrics, headline=("P@1", "P@1 (raw pixels)"), published={"P@1": 0.9})
    record = json.loads(path.read_text())
    assert record["headline"] == {"metric": "P@1", "against": "P@1 (raw pixels)"} and record["published"] == {"P@1": 0.9}
    with pytest.raises(ValueError, match="headline must be"):
        cab420utils.record_results(run, metrics, headline=("P@1", "MAP@R"))
    with pytest.raises(ValueError, match="published maps"):
        cab420utils.record_results(run, metrics, published={"P@1": "97.75%"})
