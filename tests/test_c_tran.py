"""C-Tran: the head against its official code (a stored reference), prediction given known labels for every method,
and label-mask training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity.c_tran import LAYERS, NUM_CLASSES, REFERENCE, WIDTH, seeded_head_state
from safetensors.torch import load_file

from labelgraph import create_model
from labelgraph.data.hide_labels import reveal_labels
from labelgraph.models.c_tran import CTranHead
from labelgraph.models.classifier import KNOWN_LOGIT

from .conftest import TINY_BACKBONE


def test_head_equals_the_official_code_on_its_stored_logits():
    """``python -m parity.c_tran --write-reference`` ran the official CTranModel (its backbone bypassed) on seeded
    random weights -- LayerNorm gains off 1, a random 'unknown' row -- and feature maps, with states mixing unknown,
    negative and positive; the same weights in our head give the same logits (the full models at 576 px: 4e-7)."""
    reference = load_file(REFERENCE)
    head = CTranHead(WIDTH, NUM_CLASSES, num_layers=LAYERS).eval()
    head.load_state_dict(
        {k.removeprefix("head."): v for k, v in seeded_head_state(NUM_CLASSES, WIDTH, LAYERS, 0).items()}
    )
    with torch.no_grad():
        logits = head.forward_known([reference["features"]], reference["known"])
        plain = head([reference["features"][1:]])  # the second image knows nothing: the plain forward
    scale = reference["logits"].abs().max()
    assert float((logits - reference["logits"]).abs().max() / scale) < 1e-4
    assert float((plain - reference["logits"][1:]).abs().max() / scale) < 1e-4
    assert (reference["known"][0] == 1).any() and (reference["known"][0] == 0).any()  # the states were exercised


def test_known_labels_change_c_trans_scores_and_are_fixed_for_other_methods():
    images = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    known = torch.tensor([[1, 0, -1, -1], [-1, -1, -1, -1]], dtype=torch.int8)
    torch.manual_seed(0)
    ctran = create_model("c_tran", num_classes=4, backbone=TINY_BACKBONE).eval()
    baseline = create_model("baseline", num_classes=4, backbone=TINY_BACKBONE).eval()
    with torch.no_grad():
        given, plain = ctran.forward_known(images, known), ctran(images)
        assert not torch.allclose(given[0, 2:], plain[0, 2:])  # the unknown labels respond to the known ones
        assert torch.allclose(given[1], plain[1], atol=1e-5)  # nothing known: the plain forward
        fixed, scores = baseline.forward_known(images, known), baseline(images)
    assert fixed[0, 0] == KNOWN_LOGIT and fixed[0, 1] == -KNOWN_LOGIT
    assert torch.equal(fixed[0, 2:], scores[0, 2:]) and torch.equal(fixed[1], scores[1])
    with pytest.raises(Exception, match="expected"):
        baseline.forward_known(images, known[:, :3])


def test_label_mask_draw_reveals_up_to_three_quarters_of_the_known_entries():
    """C-Tran's draw: k uniform in 0..floor(0.75 C) entries per image; revealed entries are their targets; an entry
    the split does not know (a third here) stays unknown when drawn, so E[revealed] = 7.5 x 2/3 of 20 classes."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.from_numpy(np.random.default_rng(0).integers(-1, 2, (4000, 20))).to(torch.int8)
    known = reveal_labels(targets, 0.75, generator)
    assert torch.equal(known[known >= 0], targets[known >= 0])
    counts = (known >= 0).sum(1).float()
    assert counts.max() <= 15 and counts.min() == 0
    assert abs(float(counts.mean()) - 7.5 * float((targets >= 0).float().mean())) < 0.2


def test_label_mask_training_counts_only_the_entries_not_revealed():
    """The task shows C-Tran a random share of each image's labels and drops them from the loss."""
    from labelgraph.engine.task import MultiLabelTask

    torch.manual_seed(0)
    task = MultiLabelTask("c_tran", backbone=TINY_BACKBONE, num_classes=6)
    targets = torch.randint(0, 2, (64, 6))
    outputs, loss_targets = task.train_outputs(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), targets)
    revealed = loss_targets == -1
    assert outputs["logits"].shape == (64, 6) and revealed.any() and (~revealed).any()
    assert torch.equal(loss_targets[~revealed], targets[~revealed])
    assert revealed.sum(1).max() <= 4  # floor(0.75 x 6)
    baseline = MultiLabelTask("baseline", backbone=TINY_BACKBONE, num_classes=6)
    assert torch.equal(baseline.train_outputs(torch.zeros(2, 3, 32, 32), targets[:2])[1], targets[:2])


def test_predict_known_conditions_c_tran_and_fixes_the_others(tmp_path, capsys):
    """``labelgraph predict --known known.csv``: C-Tran's scores of the other labels move with what is known; a
    baseline's stay its plain scores; both return the known entries as 1 / 0 and say what they did."""
    import json

    from PIL import Image

    from labelgraph.apis import save_model
    from labelgraph.cli import main as cli_main

    classes = ["cat", "dog", "sofa", "tree"]
    photos = []
    for i in range(3):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(photos[-1])
    (tmp_path / "known.csv").write_text("image,labels\np0.png,cat|!dog|?*\np1.png,?*\nelsewhere.png,cat\n")
    for method, how in (("c_tran", "conditioned"), ("baseline", "fixed")):
        torch.manual_seed(0)
        model = create_model(method, num_classes=4, backbone=TINY_BACKBONE).eval()
        folder = save_model(model, tmp_path / method, class_names=classes, image_size=32)
        base = ["predict", str(folder), *map(str, photos), "--runtime", "torch"]
        assert cli_main([*base, "--out", str(tmp_path / "plain.json")]) == 0
        assert cli_main([*base, "--out", str(tmp_path / "known.json"), "--known", str(tmp_path / "known.csv")]) == 0
        assert "known labels: 2 of 3 image(s)" in capsys.readouterr().err
        plain = json.loads((tmp_path / "plain.json").read_text())["predictions"]
        given = json.loads((tmp_path / "known.json").read_text())
        assert given["known_labels"] == how and given["predictions"][0]["known"] == {"cat": 1, "dog": 0}
        first, rest = given["predictions"][0]["scores"], [p["scores"] for p in given["predictions"][1:]]
        assert (first["cat"], first["dog"]) == (1.0, 0.0) and "known" not in given["predictions"][1]
        assert rest == [p["scores"] for p in plain[1:]]  # nothing known: the plain scores
        moved = max(abs(first[c] - plain[0]["scores"][c]) for c in ("sofa", "tree"))
        assert (moved > 1e-4) if method == "c_tran" else (moved < 1e-6), (method, moved)


def test_a_short_run_trains_c_tran_at_its_own_rate():
    """Scaled to the demo, C-Tran's transformer trains at 1e-4 (at the usual AdamW 1e-3 it fell 15 mAP behind), and
    stage 2 of labelgraph train halves that rate; a graph method keeps 1e-3."""
    from labelgraph.models import get_recipe

    def scaled_lr(method: str) -> float:
        recipe = get_recipe(method).scaled(epochs=4, steps_per_epoch=10, batch_size=32, image_size=96)
        return recipe.optimizer.init_args["lr"]

    assert scaled_lr("c_tran") == 1e-4 and get_recipe("c_tran").short_run_rate == 1e-4
    assert scaled_lr("ml_gcn") == 1e-3 and get_recipe("ml_gcn").short_run_rate == 1e-3
    assert get_recipe("c_tran").label_mask_training == 0.75
