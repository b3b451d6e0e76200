"""How far the numbers of ``labelgraph calibrate``, ``train`` and ``audit`` hold, measured on the demo's scenes.

    python -m benchmarks.bench_trust [--work DIR] [--out FILE]

One run trains the demo's quick-tour models (``labelgraph demo``'s frozen-backbone protocol on the Fashion scenes,
2,000 training images, the stand-in pretrained ResNet-10t, 4 epochs; baseline, ML-GCN, Query2Label), scores their
validation (500) and test (500) splits, and measures:

1. **thresholds**: per-class thresholds chosen on 10 or 30 validation images, CF1 on the untouched test split -- the
   old rule (each class's own F1 optimum, ``prior_positives=0``) against the new default (shrunk toward the pooled
   threshold, ``prior_positives=1``) and other strengths; on one draw and on 100 random draws (mean and spread), with
   the classes predicted on nearly every test image, and the in-sample and cross-fitted CF1 the rule would report;
2. **calibration**: ECE on the test split of the network's probabilities and of each scaling fitted on the validation
   split (Platt, temperature, each per class), for the three methods;
3. **conformal**: 200 random calibration/test splits of the 1,000 scored images at recall 0.9: the test recall (mean,
   5th and 95th percentile) and labels per image of the conformal rule, MAPIE's controller on its grid, and the
   per-class F1 thresholds fitted on the same calibration images;
4. **audit**: the demo's train split with planted errors (``labelgraph data add-noise``: 10 % of positives dropped,
   5 % as many wrong ones added, seed 0), out-of-fold scores of five ML-GCN heads (``labelgraph audit --protocol head``:
   the head on the frozen backbone's cached features), and how well the ranking finds the planted entries (precision
   at K = their number, AUPRC) against per-class confident learning on the same scores -- and the test mAP of a head
   trained on the clean labels, the noisy ones, and the noisy ones after a person reviewed the top K suspects of each
   ranking and corrected those that were wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, write

METHODS = ("baseline", "ml_gcn", "query2label")
MAIN = "ml_gcn"
OURS, CL = "labelgraph audit (model + label graph)", "confident learning (self-confidence)"


def train_models(work: Path, seed: int = 0) -> dict[str, Any]:
    """The demo's quick tour (frozen backbone, 4 epochs) on the Fashion scenes; its exported models and splits."""
    from labelgraph.studies.demo import run_demo

    with contextlib.redirect_stdout(io.StringIO()):
        results = run_demo(out=work, methods=list(METHODS), epochs=4, data="fashion", seed=seed, train_images=2000,
                           image_size=96, progress=False, pretrain_images=3000, frozen_backbone=True)  # fmt: skip
    return {
        "data": results["dataset"]["kind"],
        "test_mAP": {m: round(results["methods"][m]["mAP"], 2) for m in METHODS},
    }


def split_logits(model_dir: Path, csv_file: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from labelgraph.apis.predict import Predictor
    from labelgraph.data.formats import load_table

    predictor = Predictor.load(model_dir)
    table = load_table("csv", str(csv_file), class_names=classes)
    return predictor.table_scores(table, 128, logits=True).astype(np.float64), table.targets


def thresholds_table(z_val: np.ndarray, y_val: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> dict:
    """Per-class thresholds chosen on ``n`` validation images by each rule, measured on the test split; and how far
    the in-sample and the cross-fitted CF1 of the default rule are from its test CF1."""
    from labelgraph.evaluation.calibration import scaled_sigmoid
    from labelgraph.evaluation.cross_fitting import cross_fit
    from labelgraph.evaluation.metrics import decision_metrics
    from labelgraph.evaluation.thresholds import ThresholdRule

    p_val, p_test = scaled_sigmoid(z_val), scaled_sigmoid(z_test)
    rules = {"own optimum (old rule, k = 0)": 0.0, "k = 1 (new default)": 1.0, "k = 2": 2.0, "k = 3": 3.0,
             "k = 10": 10.0, "one pooled threshold (k = inf)": float("inf")}  # fmt: skip
    out: dict[str, Any] = {
        "test_images": len(y_test),
        "test_CF1_at_0.5": round(decision_metrics(p_test >= 0.5, y_test)["CF1"], 2),
    }
    for n in (10, 30):
        rng = np.random.default_rng(n)
        draws = [rng.choice(len(y_val), n, replace=False) for _ in range(100)]
        rows = {}
        for name, k in rules.items():
            rule = ThresholdRule(prior_positives=k)
            test_cf1, always, estimates = [], [], {"in_sample": [], "cross_fitted": []}
            for idx in draws:
                t = rule.fit(p_val[idx], y_val[idx]).thresholds
                test_cf1.append(decision_metrics(p_test >= t, y_test)["CF1"])
                always.append(int(((p_test >= t).mean(0) > 0.95).sum()))  # classes predicted on nearly every image
                estimates["in_sample"].append(decision_metrics(p_val[idx] >= t, y_val[idx])["CF1"])
                held = cross_fit(p_val[idx], y_val[idx], lambda s, y, h, r=rule: h >= r.fit(s, y).thresholds, 5, 0)
                estimates["cross_fitted"].append(decision_metrics(held, y_val[idx])["CF1"])
            rows[name] = {
                "test_CF1_first_draw": round(test_cf1[0], 2), "test_CF1_mean": round(float(np.mean(test_cf1)), 2),
                "test_CF1_std": round(float(np.std(test_cf1, ddof=1)), 2),
                "always_predicted_classes_mean": round(float(np.mean(always)), 2),
                "in_sample_CF1_mean": round(float(np.mean(estimates["in_sample"])), 2),
                "cross_fitted_CF1_mean": round(float(np.mean(estimates["cross_fitted"])), 2),
            }  # fmt: skip
        out[f"{n}_validation_images"] = {"draws": len(draws), "rules": rows}
    return out


def calibration_table(scored: dict[str, tuple]) -> dict:
    from labelgraph.evaluation.calibration import SCALING_MODES, calibration_error, fit_scaling

    rows = {}
    for method, (z_val, y_val, z_test, y_test) in scored.items():
        row: dict[str, Any] = {}
        for mode in SCALING_MODES:  # none: the network's own probabilities
            scaling = fit_scaling(z_val, y_val, mode)
            ece = calibration_error(scaling.apply(z_test), y_test)
            row[mode] = {"ECE": round(ece["overall"], 2), "classwise_ECE": round(ece["class_mean"], 2)}
        platt = fit_scaling(z_val, y_val, "platt")
        row["platt_fit"] = {
            "temperature": round(float(platt.temperature[0]), 3),
            "bias": round(float(platt.bias[0]), 3),
        }
        rows[method] = row
    return {"fitted_on": "validation split (500 images)", "measured_on": "test split (500 images)",
            "binning": "15 equal-width bins, every (image, class) entry", "methods": rows}  # fmt: skip


def conformal_table(p: np.ndarray, y: np.ndarray, splits: int = 200, recall: float = 0.9) -> dict:
    from labelgraph.evaluation.conformal import conformal_recall_threshold, image_recall
    from labelgraph.evaluation.thresholds import ThresholdRule

    labelled = np.flatnonzero((y == 1).any(1))
    p, y = p[labelled], y[labelled]
    grid = np.arange(0, 1, 0.01)
    out = {}
    for n_cal in (50, 500):
        rng = np.random.default_rng(n_cal)
        found: dict[str, list] = {"conformal": [], "mapie_grid": [], "f1_thresholds": []}
        for _ in range(splits):
            order = rng.permutation(len(y))
            cal, test = order[:n_cal], order[n_cal:]
            t = conformal_recall_threshold(p[cal], y[cal], recall).threshold
            rules = {"conformal": p[test] >= t, "mapie_grid": p[test] > grid[grid < t].max(initial=0.0),
                     "f1_thresholds": p[test] >= ThresholdRule().fit(p[cal], y[cal]).thresholds}  # fmt: skip
            for name, decided in rules.items():
                found[name].append((np.nanmean(image_recall(decided, y[test])), decided.sum(1).mean()))
        out[f"{n_cal}_calibration_images"] = {
            name: {"recall_mean": round(float(np.mean([r for r, _ in v])), 4),
                   "recall_p5": round(float(np.percentile([r for r, _ in v], 5)), 4),
                   "recall_p95": round(float(np.percentile([r for r, _ in v], 95)), 4),
                   "labels_per_image": round(float(np.mean([s for _, s in v])), 2)}
            for name, v in found.items()
        }  # fmt: skip
    mapie = mapie_check(p, y, recall)
    return {"target_recall": recall, "splits": splits, "images": len(y), "results": out, "mapie_check": mapie,
            "true_labels_per_image": round(float((y == 1).sum(1).mean()), 2)}  # fmt: skip


def mapie_check(p: np.ndarray, y: np.ndarray, recall: float) -> dict | None:
    """MAPIE's controller on the first 500 images: its threshold against the largest grid point below ours."""
    try:
        from mapie.risk_control import MultiLabelClassificationController
    except ImportError:
        return None
    from labelgraph.evaluation.conformal import conformal_recall_threshold

    ours = conformal_recall_threshold(p[:500], y[:500], recall).threshold
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        controller = MultiLabelClassificationController(
            predict_function=lambda rows: p[rows[:, 0].astype(int)], target_level=recall
        ).calibrate(np.arange(500)[:, None], y[:500])
    grid = np.arange(0, 1, 0.01)
    return {"ours": round(ours, 5), "mapie": round(float(controller.best_predict_param[0]), 5),
            "largest_grid_point_below_ours": round(float(grid[grid < ours].max()), 5)}  # fmt: skip


def ranking_quality(suspicion: np.ndarray, wrong: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score

    known = np.isfinite(suspicion)
    s, w = suspicion[known], wrong[known]
    k = int(w.sum())
    top = np.argsort(-s, kind="stable")[:k]
    return {"precision_at_K": round(float(w[top].mean()), 4), "AUPRC": round(float(average_precision_score(w, s)), 4)}


def cleanlab_rankings(probs: np.ndarray, targets: np.ndarray, wrong: np.ndarray) -> dict | None:
    """cleanlab's own multi-label confident learning on the same scores (when the optional, AGPL-licensed package is
    installed: ``pip install -e .[bench-cleanlab]``): its per-class label quality as a ranking, and its per-class
    issues. Unknown entries count as absent for cleanlab (it has no unknown state) and are left out of the measures."""
    try:
        from cleanlab.multilabel_classification.filter import find_multilabel_issues_per_class
        from cleanlab.multilabel_classification.rank import get_label_quality_scores_per_class
    except ImportError:
        return None
    labels = [list(np.flatnonzero(row == 1)) for row in targets]
    known = targets >= 0
    out = {}
    for method, adjust in (("self_confidence", False), ("normalized_margin", True)):
        per_class = get_label_quality_scores_per_class(labels, probs, method=method, adjust_pred_probs=adjust)
        quality = as_entries(per_class, targets.shape)
        out[f"cleanlab {method}{' (adjusted)' if adjust else ''}"] = ranking_quality(
            np.where(known, 1 - quality, np.nan), wrong
        )
    flags = as_entries(find_multilabel_issues_per_class(labels, probs), targets.shape) & known
    out["cleanlab find_multilabel_issues_per_class"] = {"count": int(flags.sum()),
                                                        "precision": round(float(wrong[flags].mean()), 4),
                                                        "recall": round(float(flags[wrong].mean()), 4)}  # fmt: skip
    return out


def as_entries(values: Any, shape: tuple[int, int]) -> np.ndarray:
    """cleanlab's per-class output as (N, K), whether it came as (N, K) or as K arrays of N."""
    array = np.asarray(values)
    return array if array.shape == shape else array.T


def head_map(table: Any, val: Any, test: Any, plan: Any, out: Path) -> float:
    """Test mAP of an ML-GCN head trained on ``table`` on the frozen backbone (``labelgraph train``'s stage 1)."""
    from labelgraph.apis.predict import Predictor
    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.studies.demo import DemoSettings
    from labelgraph.studies.fine_tune import pretrained_argument, train_head, write_splits

    write_splits({"train": table, "val": val}, out / "splits")
    settings = DemoSettings(plan.head_epochs, plan.seed, plan.backbone, pretrained_argument(plan.weights), False)
    with contextlib.redirect_stdout(io.StringIO()):
        folder, _ = train_head(plan, settings, out)
    predictor = Predictor.load(folder)
    return round(float(evaluate(predictor.table_scores(test, 128), test.targets)["mAP"]), 2)


def audit_table(work: Path, classes: list[str]) -> dict:
    from labelgraph.data.formats import load_table
    from labelgraph.data.label_noise import add_label_noise
    from labelgraph.evaluation.label_audit import audit_scores, self_confidence_suspicion
    from labelgraph.studies.audit import out_of_fold_scores
    from labelgraph.studies.fine_tune import make_plan

    data = work / "data"
    clean = load_table("csv", str(data / "train.csv"), class_names=classes)
    val = load_table("csv", str(data / "val.csv"), class_names=classes)
    test = load_table("csv", str(data / "test.csv"), class_names=classes)
    noisy, changed = add_label_noise(clean, 0.10, 0.05, seed=0)
    wrong = noisy.targets != clean.targets
    weights = str(next((work / "pretrained").glob("*.safetensors")))
    plan = make_plan(int(len(clean) * 0.8 * 0.8), MAIN, "resnet10t", weights, 96, "glove50", 0)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        probs = out_of_fold_scores(noisy, plan, work / "audit", folds=5, protocol="head")
    oof_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = audit_scores(probs, noisy.targets)
    audit_seconds = time.perf_counter() - start
    no_graph = audit_scores(probs, noisy.targets, use_graph=False)["suspicion"]
    rankings = {OURS: ours["suspicion"], "same noise model, model only (no graph)": no_graph,
                CL: self_confidence_suspicion(probs, noisy.targets)}  # fmt: skip
    quality = {name: ranking_quality(s, wrong) for name, s in rankings.items()}
    flags = ours["confident_learning"]
    quality["cleanlab (optional, on the same scores)"] = cleanlab_rankings(probs, noisy.targets, wrong)
    quality[CL]["flagged"] = {
        "count": int(flags.sum()), "precision": round(float(wrong[flags].mean()), 4),
        "recall": round(float(flags[wrong].mean()), 4)}  # fmt: skip
    k = int(wrong.sum())
    maps = {
        "clean labels": head_map(clean, val, test, plan, work / "heads" / "clean"),
        "noisy labels": head_map(noisy, val, test, plan, work / "heads" / "noisy"),
    }
    reviewed = {}
    for name, key in (("noisy, top-K of labelgraph audit reviewed", OURS),
                      ("noisy, top-K of confident learning reviewed", CL)):  # fmt: skip
        # a person reviews the K most suspect entries and corrects those that are wrong (the others stay as they are)
        fixed = noisy.subset(np.arange(len(noisy)))
        s = np.nan_to_num(rankings[key], nan=-1.0)
        rows, cols = np.divmod(np.argsort(-s.ravel(), kind="stable")[:k], s.shape[1])
        found = wrong[rows, cols]
        fixed.targets[rows[found], cols[found]] = clean.targets[rows[found], cols[found]]
        reviewed[name] = int(found.sum())
        maps[name] = head_map(fixed, val, test, plan, work / "heads" / key.split()[0])
    planted = {
        "missing": int((wrong & (clean.targets == 1)).sum()),
        "spurious": int((wrong & (clean.targets == 0)).sum()),
    }
    return {"planted": planted, "K": k, "out_of_fold_seconds": round(oof_seconds, 1),
            "audit_seconds": round(audit_seconds, 2), "noise_rates_fitted": ours["noise_rates"], "rankings": quality,
            "test_mAP_of_a_head": maps, "errors_corrected_by_review": reviewed}  # fmt: skip


def run(work: Path) -> dict[str, Any]:
    from labelgraph.evaluation.calibration import scaled_sigmoid

    start = time.perf_counter()
    trained = train_models(work)
    classes = (work / "data" / "classes.txt").read_text().split()
    scored = {}
    for method in METHODS:
        z_val, y_val = split_logits(work / method / "model", work / "data" / "val.csv", classes)
        z_test, y_test = split_logits(work / method / "model", work / "data" / "test.csv", classes)
        scored[method] = (z_val, y_val, z_test, y_test)
    z_val, y_val, z_test, y_test = scored[MAIN]
    pool = scaled_sigmoid(np.concatenate([z_val, z_test]))
    result = {
        "models": trained,
        "thresholds": thresholds_table(z_val, y_val, z_test, y_test),
        "calibration": calibration_table(scored),
        "conformal": conformal_table(pool, np.concatenate([y_val, y_test])),
        "audit": audit_table(work, classes),
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="bench_trust_work", help="folder for the data, models and folds")
    p.add_argument("--out", default=str(RESULTS / "trust.json"))
    args = p.parse_args()
    result = run(Path(args.work))
    write(result, args.out)
    print(markdown(result))
    print(f"wrote {args.out}")


def markdown(r: dict[str, Any]) -> str:
    """The four tables of ``benchmarks/README.md`` from a result."""
    t, c, k, a = r["thresholds"], r["calibration"], r["conformal"], r["audit"]
    out = [f"Models (demo quick tour, {r['models']['data']} scenes), test mAP: "
           + ", ".join(f"{m} {v:.2f}" for m, v in r["models"]["test_mAP"].items()) + ".", ""]  # fmt: skip
    out += ["**Thresholds** (ML-GCN; chosen on n validation images, 100 random draws; test CF1 at 0.5: "
            f"{t['test_CF1_at_0.5']:.2f}):", "",
            "| n | rule | test CF1, first draw | test CF1, mean ± sd | classes predicted on > 95 % of test images | "
            "in-sample CF1 | cross-fitted CF1 |", "|---:|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for n in ("10", "30"):
        for name, v in t[f"{n}_validation_images"]["rules"].items():
            out.append(f"| {n} | {name} | {v['test_CF1_first_draw']:.2f} | {v['test_CF1_mean']:.2f} ± "
                       f"{v['test_CF1_std']:.2f} | {v['always_predicted_classes_mean']:.2f} | "
                       f"{v['in_sample_CF1_mean']:.2f} | {v['cross_fitted_CF1_mean']:.2f} |")  # fmt: skip
    modes = ("none", "temperature", "temperature_per_class", "platt", "platt_per_class")
    out += ["", f"**Calibration** (ECE %, pooled; fitted on the {c['fitted_on']}, measured on the {c['measured_on']}):",
            "", "| method | " + " | ".join(m.replace("_", " ") for m in modes) + " | Platt's T, b |",
            "|---|" + "---:|" * (len(modes) + 1)]  # fmt: skip
    for method, row in c["methods"].items():
        fit = row["platt_fit"]
        out.append(f"| {method} | " + " | ".join(f"{row[m]['ECE']:.2f}" for m in modes)
                   + f" | {fit['temperature']:.3f}, {fit['bias']:+.3f} |")  # fmt: skip
    out += ["", f"**Conformal recall {k['target_recall']}** (ML-GCN, {k['splits']} random calibration/test splits of "
            f"{k['images']} images; {k['true_labels_per_image']} true labels per image):", "",
            "| calibration images | rule | test recall, mean | 5th percentile | 95th percentile | labels per image |",
            "|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    names = {"conformal": "conformal (labelgraph)", "mapie_grid": "MAPIE's grid (0.01)",
             "f1_thresholds": "per-class F1 thresholds"}  # fmt: skip
    for size, rules in k["results"].items():
        for name, v in rules.items():
            out.append(f"| {size.split('_')[0]} | {names[name]} | {v['recall_mean']:.3f} | {v['recall_p5']:.3f} | "
                       f"{v['recall_p95']:.3f} | {v['labels_per_image']:.2f} |")  # fmt: skip
    out += ["", f"**Audit** ({a['planted']['missing']} positives dropped and {a['planted']['spurious']} added in the "
            f"train split; K = {a['K']}; out-of-fold scores of five ML-GCN heads, {a['out_of_fold_seconds']:.0f} s; "
            f"the audit itself {a['audit_seconds']:.1f} s):", "",
            "| ranking | precision at K | AUPRC |", "|---|---:|---:|"]  # fmt: skip
    for name, v in a["rankings"].items():
        if v is None:
            continue
        rows = v.items() if name.startswith("cleanlab") else [(name, v)]
        for label, q in rows:
            if "precision_at_K" in q:
                out.append(f"| {label} | {q['precision_at_K']:.3f} | {q['AUPRC']:.3f} |")
    out += ["", "| labels a head trains on | errors corrected | test mAP |", "|---|---:|---:|"]
    for name, value in a["test_mAP_of_a_head"].items():
        fixed = a["errors_corrected_by_review"].get(name, "")
        out.append(f"| {name} | {fixed} | {value:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
