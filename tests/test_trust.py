"""How far to trust a tag and a label: thresholds that hold, calibration error, temperature scaling, the conformal
recall rule and the label audit, each against a hand-made case or a reference library."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score
from torchmetrics.functional.classification import binary_calibration_error

from labelgraph.evaluation.calibration import (
    calibration_error,
    fit_scaling,
    fit_temperature,
    logit,
    reliability_bins,
    scaled_sigmoid,
)
from labelgraph.evaluation.conformal import conformal_recall_threshold, image_recall, images_needed
from labelgraph.evaluation.cross_fitting import cross_fit, fold_indices
from labelgraph.evaluation.label_audit import (
    audit_scores,
    confident_learning,
    context_features,
    ranked_entries,
    self_confidence_suspicion,
)
from labelgraph.evaluation.metrics import decision_metrics, evaluate
from labelgraph.evaluation.thresholds import ThresholdRule, f1_optimal_thresholds


def logistic_table(n: int, c: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn so that sigmoid(z / temperature) is the true probability of each label."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 3.0, (n, c))
    return z, (rng.random((n, c)) < scaled_sigmoid(z / temperature)).astype(np.int8)


class TestThresholds:
    def test_a_class_with_one_validation_positive_gets_no_zero_threshold(self):
        # class 0: its single positive scored lowest -> its own best F1 is "predict it on every image" (0.0)
        scores = np.array([[0.02, 0.9], [0.30, 0.8], [0.40, 0.2], [0.50, 0.7], [0.35, 0.1], [0.45, 0.85]])
        targets = np.array([[1, 1], [0, 1], [0, 0], [0, 1], [0, 0], [0, 1]], dtype=np.int8)
        old = f1_optimal_thresholds(scores, targets)
        assert old[0] <= 0.02  # the old rule: every image gets the class
        fit = ThresholdRule().fit(scores, targets)
        assert fit.positives.tolist() == [1, 4] and fit.few().tolist() == [True, True]
        assert fit.thresholds[0] > 0.1  # halfway to the global threshold now
        # the formula, by hand: probabilities weighted by n_c and k = 1
        own, g = fit.own[0], fit.global_threshold
        assert fit.thresholds[0] == pytest.approx((1 * own + 1 * g) / 2)
        assert fit.weight.tolist() == pytest.approx([1 / 2, 4 / 5])

    def test_the_global_threshold_maximises_the_pooled_f1(self):
        rng = np.random.default_rng(0)
        targets = (rng.random((120, 5)) < 0.3).astype(np.int8)
        scores = np.clip(rng.normal(0.3 + 0.4 * targets, 0.2), 0, 1).round(3)
        g = ThresholdRule().fit(scores, targets).global_threshold
        best = max(f1_score(targets.ravel(), scores.ravel() >= t) for t in np.unique(scores))
        assert f1_score(targets.ravel(), scores.ravel() >= g) == pytest.approx(best)

    def test_no_shrinkage_is_the_per_class_optimum_and_infinite_is_one_threshold(self):
        rng = np.random.default_rng(1)
        targets = (rng.random((80, 3)) < 0.4).astype(np.int8)
        scores = rng.random((80, 3))
        own = ThresholdRule(prior_positives=0).fit(scores, targets)
        assert np.allclose(own.thresholds, own.own)
        pooled = ThresholdRule(prior_positives=float("inf")).fit(scores, targets)
        assert np.allclose(pooled.thresholds, pooled.global_threshold)

    def test_precision_and_recall_targets(self):
        s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
        y = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=np.int8)
        scores, targets = s[:, None], y[:, None]
        # precision at each cut: 1, 1, .67, .75, .6, .67, .57, .5 -> the lowest cut with >= 0.75 accepts down to 0.6
        fit = ThresholdRule("precision", 0.75, prior_positives=0).fit(scores, targets)
        assert fit.thresholds[0] == pytest.approx(0.55)
        # recall reaches 0.75 when three of the four positives (down to 0.6) are in
        fit = ThresholdRule("recall", 0.75, prior_positives=0).fit(scores, targets)
        assert fit.thresholds[0] == pytest.approx(0.55)
        fit = ThresholdRule("recall", 1.0, prior_positives=0).fit(scores, targets)
        assert fit.thresholds[0] == pytest.approx(0.35)
        fit = ThresholdRule("precision", 1.0, prior_positives=0).fit(scores, targets)
        assert fit.thresholds[0] == pytest.approx(0.75)
        never = ThresholdRule("precision", 1.0, prior_positives=0).fit(np.array([[0.3], [0.8]]), np.array([[1], [0]]))
        assert never.thresholds[0] > 0.8  # unreachable: nothing predicted
        assert ThresholdRule.parse("precision:0.9") == ThresholdRule("precision", 0.9)
        with pytest.raises(ValueError, match="precision:LEVEL"):
            ThresholdRule.parse("precision:high")

    def test_cross_fitting_scores_each_image_with_a_rule_fitted_without_it(self):
        rng = np.random.default_rng(2)
        targets = (rng.random((23, 4)) < 0.3).astype(np.int8)
        scores = np.arange(23, dtype=np.float64)[:, None].repeat(4, 1)  # each row's score names it

        def fit_apply(fit_scores, fit_targets, held):
            seen = set(fit_scores[:, 0].astype(int))
            return np.array([[int(row) in seen] for row in held[:, 0]])

        assert not cross_fit(scores, targets, fit_apply, folds=5).any()
        folds = fold_indices(targets, 5)
        assert sorted(np.concatenate(folds).tolist()) == list(range(23)) and len(folds) == 5

    def test_decision_metrics_equal_evaluate_at_a_threshold(self):
        rng = np.random.default_rng(3)
        targets = rng.integers(-1, 2, (50, 6)).astype(np.int8)
        scores = rng.random((50, 6))
        at = evaluate(scores, targets, threshold=0.4)
        got = decision_metrics(scores >= 0.4, targets)
        assert got == pytest.approx({k: at[k] for k in got})


class TestCalibrationError:
    def test_ece_equals_torchmetrics_pooled_and_per_class(self):
        z, y = logistic_table(400, 5, 2.0, seed=0)
        y[np.random.default_rng(0).random(y.shape) < 0.1] = -1
        p = scaled_sigmoid(z)
        ece = calibration_error(p, y)
        reference = binary_calibration_error(torch.tensor(p.ravel()).float(), torch.tensor(y.ravel()).long(),
                                             n_bins=15, norm="l1", ignore_index=-1)  # fmt: skip
        assert ece["overall"] == pytest.approx(100 * reference.item(), abs=1e-4)
        for c in range(5):
            ref = binary_calibration_error(torch.tensor(p[:, c]).float(), torch.tensor(y[:, c]).long(), n_bins=15,
                                           ignore_index=-1)  # fmt: skip
            assert ece["per_class"][c] == pytest.approx(100 * ref.item(), abs=1e-4)
        assert "15 equal-width bins" in ece["binning"]

    def test_reliability_bins_by_hand(self):
        p = np.array([0.05, 0.05, 0.95, 0.95, 0.55, 0.5])
        y = np.array([0, 1, 1, 1, 0, -1])
        b = reliability_bins(p, y, bins=10)
        assert b["count"].tolist() == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # the unknown entry is left out
        assert b["frequency"][0] == 0.5 and b["confidence"][9] == pytest.approx(0.95)
        # ECE: (2 |0.05 - 0.5| + 1 |0.55 - 0| + 2 |0.95 - 1|) / 5
        assert calibration_error(p[None], y[None], bins=10)["overall"] == pytest.approx(100 * (0.9 + 0.55 + 0.1) / 5)

    def test_temperature_scaling_recovers_a_known_temperature(self):
        z, y = logistic_table(6000, 4, 2.5, seed=1)
        assert fit_temperature(z, y) == pytest.approx(np.full(4, 2.5), rel=0.06)
        before, after = calibration_error(scaled_sigmoid(z), y)["overall"], calibration_error(scaled_sigmoid(z, 2.5), y)
        assert after["overall"] < before / 3

    def test_platt_scaling_recovers_a_shift_that_no_temperature_can(self):
        # true probability sigmoid(z / 2 - 1.5): logits shifted as an asymmetric loss leaves them
        rng = np.random.default_rng(8)
        z = rng.normal(1.0, 3.0, (6000, 3))
        y = (rng.random(z.shape) < scaled_sigmoid(z / 2.0 - 1.5)).astype(np.int8)
        platt = fit_scaling(z, y, "platt")
        assert platt.temperature == pytest.approx(np.full(3, 2.0), rel=0.06)
        assert platt.bias == pytest.approx(np.full(3, -1.5), abs=0.1)
        temperature = fit_scaling(z, y, "temperature")
        assert (temperature.bias == 0).all()
        ece = {name: calibration_error(s.apply(z), y)["overall"] for name, s in (("platt", platt), ("t", temperature))}
        assert ece["platt"] < 1.5 < ece["t"]
        assert np.allclose(fit_scaling(z, y, "none").apply(z), scaled_sigmoid(z))
        with pytest.raises(ValueError, match="platt_per_class"):
            fit_scaling(z, y, "isotonic")

    def test_per_class_temperatures_and_the_fallback_for_thin_classes(self):
        rng = np.random.default_rng(4)
        z = rng.normal(0, 3, (4000, 3))
        y = (rng.random(z.shape) < scaled_sigmoid(z / np.array([0.5, 1.0, 3.0]))).astype(np.int8)
        y[:, 2] = -1
        y[:5, 2] = [1, 1, 0, 0, 1]  # too few known entries for a temperature of its own
        t = fit_temperature(z, y, per_class=True)
        assert t[:2] == pytest.approx([0.5, 1.0], rel=0.1)
        assert t[2] == pytest.approx(fit_temperature(z, y)[0])  # the global one


class TestConformalRecall:
    def test_the_threshold_on_a_hand_made_table(self):
        # four images, one positive each, scoring 0.9, 0.8, 0.7, 0.2; the negatives don't matter
        scores = np.array([[0.9, 0.1], [0.8, 0.6], [0.1, 0.7], [0.2, 0.95]])
        targets = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.int8)
        # risk at t = 0.2, 0.7, 0.8, 0.9: 0, 1/4, 2/4, 3/4; 4/5 risk + 1/5 <= alpha
        assert conformal_recall_threshold(scores, targets, 0.75).threshold == 0.2  # 0.4 > 0.25 at 0.7
        rule = conformal_recall_threshold(scores, targets, 0.55)  # alpha 0.45: 0.7 passes (0.4), 0.8 fails (0.6)
        assert rule.threshold == 0.7 and rule.attainable and rule.images == 4
        assert rule.calibration_recall == 0.75 and rule.mean_labels == 1.0  # one label on each image at 0.7
        # an image with two positives counts each as half its loss
        two = conformal_recall_threshold(np.array([[0.9, 0.3]] * 3), np.array([[1, 1]] * 3), 0.55)
        assert two.threshold == 0.3  # at 0.9 every image loses 1/2: 3/4 * 1/2 + 1/4 = 0.625 > 0.45

    def test_too_few_images_predict_every_label(self):
        scores, targets = np.array([[0.9, 0.2]] * 5), np.array([[1, 0]] * 5, dtype=np.int8)
        assert images_needed(0.9) == 9
        rule = conformal_recall_threshold(scores, targets, 0.9)  # 1 / (5 + 1) > 0.1
        assert not rule.attainable and rule.threshold == 0.0

    def test_equals_mapies_controller_on_its_grid(self):
        mapie = pytest.importorskip("mapie.risk_control")
        rng = np.random.default_rng(5)
        for _ in range(3):
            z = rng.normal(-1, 2, (300, 8))
            y = (rng.random(z.shape) < scaled_sigmoid(z)).astype(np.int8)
            y[np.arange(300), rng.integers(0, 8, 300)] = 1  # MAPIE wants a label on every image
            p = scaled_sigmoid(z)
            ours = conformal_recall_threshold(p, y, 0.9).threshold
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                controller = mapie.MultiLabelClassificationController(
                    predict_function=lambda rows, p=p: p[rows[:, 0].astype(int)], target_level=0.9
                ).calibrate(np.arange(300)[:, None], y)
            grid = np.arange(0, 1, 0.01)  # MAPIE predicts p > lambda on this grid: the largest grid point below ours
            assert controller.best_predict_param[0] == pytest.approx(grid[grid < ours].max())

    def test_the_recall_guarantee_over_many_random_splits(self):
        z, y = logistic_table(1000, 10, 1.0, seed=6)
        p = scaled_sigmoid(z)
        labelled = np.flatnonzero((y == 1).any(1))
        rng = np.random.default_rng(7)
        recalls = []
        for _ in range(300):
            order = rng.permutation(labelled)
            cal, test = order[:50], order[50:]
            rule = conformal_recall_threshold(p[cal], y[cal], 0.9)
            recalls.append(np.nanmean(image_recall(p[test] >= rule.threshold, y[test])))
        # E[recall] >= 0.9; 300 splits put the mean's standard error near 0.002
        assert np.mean(recalls) >= 0.9 - 0.005
        assert np.mean(recalls) <= 0.9 + 1 / 51 + 0.01  # and tight: within 1/(n+1) of the target


def planted_errors(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scenes of co-occurring classes, 10 % of positives dropped and 5 % as many spurious ones added; a model whose
    scores see the true labels through noise. Returns (probabilities, given labels, wrong entries)."""
    rng = np.random.default_rng(seed)
    n, c = 800, 12
    scene = rng.integers(0, 3, n)
    truth = np.zeros((n, c), dtype=np.int8)
    for i in range(n):
        members = np.arange(4) + 4 * scene[i]
        truth[i, members[rng.random(4) < 0.6]] = 1
    given = truth.copy()
    positives = np.argwhere(truth == 1)
    dropped = positives[rng.random(len(positives)) < 0.10]
    given[dropped[:, 0], dropped[:, 1]] = 0
    negatives = np.argwhere(truth == 0)
    added = negatives[rng.choice(len(negatives), int(0.05 * len(positives)), replace=False)]
    given[added[:, 0], added[:, 1]] = 1
    z = np.where(truth == 1, 1.0, -1.5) + rng.normal(0, 1.5, truth.shape)
    return scaled_sigmoid(z), given, given != truth


class TestLabelAudit:
    def test_the_graph_finds_planted_errors_better_than_the_model_alone(self):
        p, given, wrong = planted_errors()
        audit = audit_scores(p, given)
        ours = average_precision_score(wrong.ravel(), audit["suspicion"].ravel())
        alone = average_precision_score(wrong.ravel(), self_confidence_suspicion(p, given).ravel())
        assert ours > alone + 0.1
        no_graph = audit_scores(p, given, use_graph=False)["suspicion"]
        assert ours > average_precision_score(wrong.ravel(), no_graph.ravel()) + 0.05  # the graph's share
        # the suspicion is a probability of being wrong: no more flagged at 0.5 than there are errors, and the fitted
        # rates near the planted ones (10 % of positives dropped)
        assert 0.2 * wrong.sum() < (audit["suspicion"] >= 0.5).sum() <= wrong.sum()
        assert 0.05 < audit["noise_rates"]["given_absent_if_present"] < 0.15
        top = ranked_entries(audit["suspicion"])[: wrong.sum()]
        assert wrong[top[:, 0], top[:, 1]].mean() > 0.4  # precision at K = the number of planted errors
        kinds = audit["kind"][top[:, 0], top[:, 1]]
        assert set(kinds) == {"missing", "spurious"}

    def test_context_leaves_the_image_out(self):
        # a and b always together in the other images; image 0 has a without b
        targets = np.array([[1, 0], [1, 1], [1, 1], [1, 1]], dtype=np.int8)
        mean, high, alone = context_features(targets)
        assert mean[0, 1] > 0 and high[0, 1] == mean[0, 1]  # b is implied by a (three of three other images)
        # b's only pairing with a is image 0 itself: leaving it out, a (in image 3) came without b
        single = context_features(np.array([[1, 1], [0, 0], [0, 0], [1, 0]], dtype=np.int8))[0]
        # P(b | a) = (0 pairs + 1 pseudo-image x prior 1/4) / (1 other image with a + 1) = 1/8
        assert single[0, 1] == pytest.approx(logit(1 / 8) - logit(1 / 4))
        assert alone.tolist() == [[True, False], [False, False], [False, False], [False, False]]

    def test_confident_learning_by_hand(self):
        p = np.array([[0.9], [0.8], [0.7], [0.1], [0.2], [0.85]])
        y = np.array([[1], [1], [1], [0], [0], [0]], dtype=np.int8)
        # t1 = mean p of given positives = 0.8, t0 = mean 1 - p of given negatives = (0.9 + 0.8 + 0.15) / 3
        flags = confident_learning(p, y)
        assert flags[:, 0].tolist() == [False, False, False, False, False, True]  # 0.85 >= 0.8: a missed positive
        assert not confident_learning(p, np.full_like(y, -1)).any()
