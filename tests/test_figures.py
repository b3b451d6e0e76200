"""Figures and pages of a trained model: per-class vectors + t-SNE, label graph, PR curves, retrieval, HTML report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from labelgraph import LabelGraph, create_model, list_models
from labelgraph.apis.export import save_model
from labelgraph.cli import main as cli_main
from labelgraph.visualization.plots import class_vectors

from .conftest import TINY_BACKBONE, TINY_SIZE

C = 5


@pytest.fixture(scope="module")
def graph() -> LabelGraph:
    rng = np.random.default_rng(0)
    g = LabelGraph.from_targets((rng.random((40, C)) < 0.4).astype(np.int8), [f"c{i}" for i in range(C)])
    g.embeddings, g.embedding_source = torch.randn(C, 8), "image:test"
    return g


@pytest.mark.parametrize("name", list_models())
def test_every_method_has_class_vectors(name, graph):
    model = create_model(name, num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
    vectors = class_vectors(model)
    assert vectors.ndim == 2 and vectors.shape[0] == C and torch.isfinite(vectors).all()


def test_prototypes_and_embeddings(graph):
    sadcl = create_model("sadcl", num_classes=C, backbone=TINY_BACKBONE, dim_feedforward=32)
    assert torch.equal(class_vectors(sadcl, "prototypes"), sadcl.head.prototypes.detach())
    ml_gcn = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
    assert torch.equal(class_vectors(ml_gcn, "embeddings"), graph.embeddings)
    with pytest.raises(ValueError, match="prototypes exist for sadcl"):
        class_vectors(ml_gcn, "prototypes")


@pytest.fixture(scope="module")
def exported(tiny_dataset, tmp_path_factory):
    from labelgraph.data import MultiLabelDataModule

    dm = MultiLabelDataModule(train=str(tiny_dataset / "train.csv"), classes=str(tiny_dataset / "classes.txt"))
    graph = dm.label_graph
    graph.embeddings = torch.randn(graph.num_classes, 8)
    torch.manual_seed(0)
    model = create_model("ml_gcn", num_classes=graph.num_classes, label_graph=graph, backbone=TINY_BACKBONE)
    folder = tmp_path_factory.mktemp("model")
    return save_model(model, folder, class_names=dm.class_names, image_size=TINY_SIZE, label_graph=graph), graph


def test_viz_commands_write_figures(exported, tiny_dataset, tmp_path, capsys):
    folder, graph = exported
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({c: ("round" if c in ("circle", "ring") else "angular") for c in graph.class_names}))
    assert cli_main(["viz", "tsne", str(folder), "--groups", str(groups), "--out", str(tmp_path / "t.png")]) == 0
    assert cli_main(["viz", "graph", str(folder), "--tau", "0.3", "--out", str(tmp_path / "g.png")]) == 0
    prob = graph.conditional_probability()  # over known pairs: the tiny train split marks occluded items unknown
    expected_edges = int(((prob >= 0.3) & ~torch.eye(graph.num_classes, dtype=torch.bool)).sum())
    assert f"{expected_edges} edges" in capsys.readouterr().out
    args = ["viz", "pr", str(folder), "--split", str(tiny_dataset / "test.csv"), "--out", str(tmp_path / "pr.png")]
    assert cli_main(args + ["--classes", str(tiny_dataset / "classes.txt")]) == 0
    for name in ("t.png", "g.png", "pr.png", "pr_ap.png"):
        assert Image.open(tmp_path / name).size[0] > 100


def test_retrieve_finds_the_query_itself_first_and_reports_broken_files(exported, tiny_dataset, tmp_path, capsys):
    folder, _ = exported
    index = sorted((tiny_dataset / "test").glob("*.png"))[:6] if (tiny_dataset / "test").is_dir() else None
    if not index:
        index = sorted(tiny_dataset.rglob("*.png"))[:6]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n")
    query = tmp_path / "query.png"
    shutil.copy(index[2], query)
    args = ["retrieve", str(folder), "--index", *map(str, index), str(tmp_path / "broken.png"), "--query", str(query)]
    assert cli_main([*args, "-k", "3", "--out", str(tmp_path / "r")]) == 1  # the broken file is an error
    result = json.loads(capsys.readouterr().out)
    hits = result["results"][0]["neighbours"]
    assert len(hits) == 3 and hits[0]["image"] == str(index[2]) and hits[0]["cosine"] == pytest.approx(1.0, abs=1e-4)
    assert [h["cosine"] for h in hits] == sorted((h["cosine"] for h in hits), reverse=True)
    assert result["errors"][0]["image"].endswith("broken.png")
    assert (tmp_path / "r" / "query_neighbours.png").is_file()


def test_html_report_is_self_contained(exported, tiny_dataset, tmp_path):
    folder, graph = exported
    run = tmp_path / "run"
    shutil.copytree(folder, run / "ml_gcn" / "model")
    shutil.copytree(tiny_dataset, run / "data")
    row = {k: 50.0 for k in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")}
    results = {
        "dataset": {
            "kind": "shapes",
            "seed": 0,
            "classes": graph.class_names,
            **{s: {"num_images": 16} for s in ("train", "val", "test")},
        },
        "settings": {"epochs": 1, "backbone": TINY_BACKBONE, "image_size": TINY_SIZE, "device": "cpu"},
        "methods": {"ml_gcn": {**row, "params": 1e6, "seconds": 3.0}},
        "per_class_AP": {"ml_gcn": [50.0] * graph.num_classes},
        "history": {"ml_gcn": [{"epoch": 0, "val/mAP": 40.0, "train/cls_loss_epoch": 0.5}]},
    }
    (run / "results.json").write_text(json.dumps(results))
    assert cli_main(["report", str(run), "--examples", "2"]) == 0
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 + 2 * 2  # AP bars, curves, 2 examples x (image, overlay)
    assert "ml_gcn" in page and "Grad-CAM" in page and 'src="http' not in page


def test_per_class_ap_table_rows_columns_and_mean():
    from labelgraph.visualization.report import per_class_table

    table = per_class_table(
        {"a": [50.0, 100.0, float("nan")], "b": [10.0, 20.0, 30.0]}, ["cat", "dog", "a_long_name_x"]
    )
    lines = table.splitlines()
    assert lines[0] == "| method | cat | dog | a_long_nam | mAP |"
    assert lines[2] == "| a | 50.0 | 100.0 | — | 75.0 |"  # a class without positives is left out of the mean
    assert lines[3] == "| b | 10.0 | 20.0 | 30.0 | 20.0 |"


def test_loss_curves_go_to_a_log_axis_when_the_losses_differ_by_orders_of_magnitude():
    from labelgraph.visualization.report import curves_figure

    def rows(losses):
        return [{"epoch": i, "train/cls_loss_epoch": v, "val/mAP": 50.0 + i} for i, v in enumerate(losses)]

    apart = curves_figure({"query2label": rows([310.0, 260.0]), "ml_gcn": rows([0.9, 0.4])})
    close = curves_figure({"baseline": rows([0.5, 0.45]), "ml_gcn": rows([0.9, 0.4])})
    assert apart.axes[0].get_yscale() == "log" and close.axes[0].get_yscale() == "linear"


def test_figures_draw_any_class_name_the_csv_accepts(tmp_path):
    """Break: matplotlib left to read ``$...$`` as mathtext -- a class called ``$x^$`` failed the report after
    training (exit 1, no report.html)."""
    from labelgraph.visualization.report import per_class_ap_figure, plot_per_class_ap
    from labelgraph.visualization.trust import png_tag

    names = ["$x^$", "$\\alpha$", "a`b", "<b>", "plain"]
    plot_per_class_ap({"m": [10.0, 20.0, 30.0, 40.0, 50.0]}, names, tmp_path / "ap.png")
    assert Image.open(tmp_path / "ap.png").size[0] > 100
    assert png_tag(per_class_ap_figure({"m": [1.0] * 5}, names, "$t^$")).startswith("<img")
