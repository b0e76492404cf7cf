"""Tests for retina_lessons.table1 and the command in retina_lessons.ablation: cached features equal the
detector's, fair runs (same start, batches, schedule), the imbalance count, the summary over seeds, and
the committed results file, whose start of training a fresh run reproduces."""

import json
import math
import re
from dataclasses import replace

import pytest
import torch

from retina_lessons import ablation, table1
from retina_lessons.heads import prior_bias
from retina_lessons.shipped import DATA_DIR
from retina_lessons.sparse_shapes import sparse_scenes

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHORT = replace(table1.TABLE1_TRAINING, steps=4, warmup_steps=1, milestones=(2, 3))
GAIN_LINE = re.compile(r"^focal gain over best CE: [+-]\d+\.\d AP \(seed std \d+\.\d AP\)$")
RESULTS = DATA_DIR / ablation.TABLE1_RESULTS


@pytest.fixture(scope="module")
def scenes():
    return table1.cache_scenes("train", 24), table1.cache_scenes("val", 8)


def test_cached_features_give_the_detectors_own_detections(scenes):
    _, heldout = scenes
    model = table1.new_detector(seed=0)
    images, _, _ = sparse_scenes(3, "val")
    direct = model.detect(list(images))
    cls_logits, box_deltas = table1.head_outputs(model, [level[:3] for level in heldout.features])
    cached = model.postprocess(cls_logits, box_deltas, heldout.image_size, [heldout.image_size] * 3)
    for a, b in zip(direct, cached):
        torch.testing.assert_close(a["scores"], b["scores"])
        torch.testing.assert_close(a["boxes"], b["boxes"])


def test_imbalance_counts_every_anchor_class_pair(scenes):
    train, _ = scenes
    counted = table1.imbalance(train)
    assert table1.TABLE1_IMAGE_SIZE == 192  # P3-P7 grids of 24, 12, 6, 3 and 2 cells a side
    assert counted["anchors"] == (24 * 24 + 12 * 12 + 6 * 6 + 3 * 3 + 2 * 2) * 9 and counted["classes"] == 4
    positives = counted["positives_per_image"] * len(train)
    expected = (counted["anchors"] * 4 * len(train) - positives) / positives
    assert math.isclose(counted["negatives_per_positive"], expected)
    assert counted["negatives_per_positive"] > 2000  # far above the classroom shapes' ~300
    assert round(table1.COCO_NEGATIVES_PER_POSITIVE) == 52_846


def test_the_settings_are_table_1a_and_1b():
    settings = table1.table1_settings()
    assert len(settings) == len(set(settings)) == 11
    assert [(0.0, alpha) for alpha in ablation.PAPER_TABLE_1A] == settings[:7]  # every alpha of Table 1a
    assert table1.FOCAL in settings
    assert all(alpha == ablation.BEST_ALPHA[gamma] for gamma, alpha in settings[7:])


def test_no_prior_changes_only_the_classification_bias():
    with_prior = table1.new_detector(seed=3).state_dict()
    without = table1.new_detector(seed=3, prior=False).state_dict()
    bias = "cls_head.predictor.bias"
    assert torch.all(without[bias] == 0) and torch.allclose(with_prior[bias], torch.tensor(prior_bias()))
    assert all(torch.equal(with_prior[k], without[k]) for k in with_prior if k != bias)


def test_rows_start_alike_see_the_same_batches_and_schedule(scenes):
    train, heldout = scenes
    focal = table1.run_setting(2.0, 0.25, 1, train, heldout, train_config=SHORT)
    ce = table1.run_setting(0.0, 0.75, 1, train, heldout, train_config=SHORT)
    for key in ("initial_weights_sum", "batches_sha1", "lr", "steps"):
        assert focal[key] == ce[key]
    assert focal["first_bbox_regression"][0] == ce["first_bbox_regression"][0]  # same weights, same batch
    assert focal["first_classification"] != ce["first_classification"]  # only the loss differs
    other_seed = table1.run_setting(2.0, 0.25, 2, train, heldout, train_config=SHORT)
    assert other_seed["batches_sha1"] != focal["batches_sha1"]
    assert other_seed["initial_weights_sum"] != focal["initial_weights_sum"]
    assert focal["steps"] == 4 and focal["diverged_at"] is None and 0 <= focal["AP"] <= 100


def test_a_non_finite_loss_stops_the_run(scenes):
    train, _ = scenes
    model = table1.new_detector()
    with torch.no_grad():
        model.cls_head.predictor.bias.fill_(math.nan)
    run = table1.train_head(model, train, SHORT)
    assert run.diverged_at == 0 and run.classification == []


def test_flips_are_refused_and_clipping_applies(scenes):
    train, _ = scenes
    with pytest.raises(ValueError, match="hflip_prob=0.5: expected 0"):
        table1.train_head(table1.new_detector(), train, replace(SHORT, hflip_prob=0.5))
    plain = table1.train_head(table1.new_detector(seed=1), train, SHORT)
    clipped = table1.train_head(table1.new_detector(seed=1), train, replace(SHORT, clip_grad_norm=1e-6))
    assert clipped.classification[0] == plain.classification[0]  # the same start ...
    assert clipped.classification[-1] != plain.classification[-1]  # ... and tiny steps after clipping


def fake_records(seeds=(0, 1, 2)):
    records = []
    for seed in seeds:
        for gamma, alpha in table1.table1_settings():
            ap = 30 + 10 * gamma / (1 + gamma) + min(alpha, 1.5 - alpha) + seed  # FL above CE; CE best at .75
            records.append({"gamma": gamma, "alpha": alpha, "seed": seed, "prior": True, "AP": ap,
                            "AP50": ap + 20, "diverged_at": None, "first_classification": [10.0, 5.0]})
        records.append({"gamma": 0.0, "alpha": table1.NO_PRIOR_ALPHA, "seed": seed, "prior": False, "AP": 0.0,
                        "AP50": 0.0, "diverged_at": 3, "first_classification": [900.0, 1e4, 1e6]})
    return records


def test_summary_over_seeds_and_the_gain_line():
    records = fake_records()
    gamma_5_seed_0 = next(i for i, r in enumerate(records) if (r["gamma"], r["seed"]) == (5.0, 0))
    records[gamma_5_seed_0]["AP"] += 1.5  # only moves that row
    summary = table1.summarise(records)
    assert summary["seeds"] == [0, 1, 2] and summary["best_ce_alpha"] == 0.75
    assert [row["table"] for row in summary["rows"]] == ["1a"] * 7 + ["1b"] * 5
    gain = 10 * 2 / 3 + 0.25 - 0.75
    assert all(math.isclose(g, gain) for g in summary["gains"]) and math.isclose(summary["gain"], gain)
    assert summary["gain_std"] == pytest.approx(0, abs=1e-9)
    gamma_5 = next(row for row in summary["rows"] if row["gamma"] == 5.0)
    assert math.isclose(gamma_5["AP std"], torch.tensor([0.0, 1.0, 2.0]).add(torch.tensor([1.5, 0, 0])).std().item(),
                        rel_tol=1e-6)
    assert gamma_5["paper AP"] == ablation.PAPER_TABLE_1B[5.0]["AP"]
    line = table1.gain_line(summary)
    assert GAIN_LINE.match(line) and line == "focal gain over best CE: +6.2 AP (seed std 0.0 AP)"
    text = table1.format_table(summary)
    assert len(text.splitlines()) == 2 + 12 and text.count("<- best CE") == 1


def test_no_prior_summary_and_its_plot():
    import matplotlib.pyplot as plt

    records = fake_records(seeds=(4,))
    (row,) = table1.no_prior_summary(records)
    assert row["seed"] == 4 and row["diverged_at"] == 3 and row["first loss no prior"] == 900.0
    ax = table1.draw_start_of_training(records, seed=4)
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    assert "diverged at step 3" in ax.get_legend().get_texts()[1].get_text()
    plt.close("all")


def test_the_command_prints_the_table_and_ends_with_the_gain(monkeypatch, capsys, scenes, tmp_path):
    def fake_run_seeds(seeds, workers, log=None):
        return fake_records(seeds)

    monkeypatch.setattr(table1, "run_seeds", fake_run_seeds)
    monkeypatch.setattr(table1, "shared_scenes", lambda name: dict(zip(("train", "heldout"), scenes))[name])
    out = tmp_path / "results.json"
    ablation.main(["--seeds", "0", "1", "2", "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert GAIN_LINE.match(lines[-1]) and "negative pairs per positive" in "\n".join(lines)
    saved = json.loads(out.read_text())
    assert saved["gain_line"] == lines[-1] and saved["summary"]["seeds"] == [0, 1, 2]
    with pytest.raises(SystemExit):
        ablation.main(["--seeds", "1", "1"])
    with pytest.raises(SystemExit):
        ablation.main(["--seeds", "1", "--workers", "0"])
    with pytest.raises(SystemExit):
        ablation.main(["--seeds", "1", "--out", "no/such/folder/results.json"])


def test_a_fresh_run_reproduces_the_committed_start_of_training():
    saved = json.loads(RESULTS.read_text())
    assert GAIN_LINE.match(saved["gain_line"]) and saved["summary"]["seeds"] == [0, 1, 2]
    seed = saved["summary"]["seeds"][0]
    committed = next(r for r in saved["runs"] if r["seed"] == seed and r["prior"]
                     and (r["gamma"], r["alpha"]) == table1.FOCAL)
    train = table1.cache_scenes("train", table1.TRAIN_IMAGES)
    model = table1.new_detector(table1.TABLE1_CONFIG.replace(focal_gamma=2.0, focal_alpha=0.25), seed)
    run = table1.train_head(model, train, replace(table1.TABLE1_TRAINING, seed=seed), steps=table1.FIRST_STEPS)
    torch.testing.assert_close(run.classification, committed["first_classification"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(run.bbox_regression, committed["first_bbox_regression"], rtol=1e-5, atol=1e-6)
