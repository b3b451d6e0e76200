"""SALGL against its official code (jasonseu/SALGL at a77cab3): the same random weights in both models, eval mode,
batch 2 at 448 px, ResNet-101, COCO's 80 classes with 768-d label embeddings (BERT's width, as the official
``embed_type: bert``); every key mapped in both directions; hard and soft scene assignment.

    git clone https://github.com/jasonseu/SALGL /tmp/SALGL   # (the checkout compared: a77cab3)
    python -m parity.salgl --official /tmp/SALGL [--write-reference]

What would otherwise hide a bug is perturbed: the per-scene co-occurrence counts are random and different per scene
(zero counts -- the state after construction -- make every graph zero and the graph steps a no-op), the scene layer's
weights are scaled so the two images fall in different scenes, BatchNorm statistics are random, and the gate layers'
two biases are both non-zero (ours hold their sum). The check is shown able to fail: with two scenes' counts swapped
the difference is large.

``--write-reference`` writes ``tests/data/salgl_official_head.safetensors``: the official head's logits for seeded
random head weights, counts and tokens (:func:`seeded_head_state`, which the test regenerates), at width 2048.

The official code calls ``.cuda()`` when built; here it is the identity. Its ``models/__init__`` imports a vendored
timm; the harness loads ``models.resnet`` and ``models.salgl`` without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import types
from argparse import Namespace
from pathlib import Path

import numpy
import torch

from labelgraph import LabelGraph, create_model
from labelgraph.models.salgl import SALGLHead
from parity.common import randomise_batchnorm, relative_difference

NUM_CLASSES, IMAGE_SIZE, EMBED, SCENES = 80, 448, 768, 6
REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "salgl_official_head.safetensors"
GATES = {"fc1": "z", "fc2": "r", "fc3": "h"}


def config(soft: bool, embed_path: Path, num_classes: int = NUM_CLASSES) -> Namespace:
    """The reproduction's settings (its coco2014 config), hard or soft scene assignment; the label embeddings read
    from ``embed_path`` (a .npy file, as the official BERT ones)."""
    return Namespace(num_classes=num_classes, num_scenes=SCENES, soft=soft, outmess=True, num_steps=3, normalize=True,
                     ignore_self=False, pos=False, embed_type="bert", embed_path=str(embed_path), distributed=False,
                     backbone="resnet101", img_size=IMAGE_SIZE)  # fmt: skip


def head_key_map() -> dict[str, str]:
    """Official key -> ours, for the keys that map one to one (the gate biases are summed: :func:`official_to_ours`)."""
    keys = {"embeddings": "head.label_embed", "scene_linear.weight": "head.scene_linear.weight",
            "comatrix": "head.comatrix", "attention.linear1.weight": "head.attention.image_proj.weight",
            "attention.linear2.weight": "head.attention.label_proj.weight",
            "attention.hidden_linear.weight": "head.attention.hidden.weight",
            "attention.hidden_linear.bias": "head.attention.hidden.bias",
            "attention.target_linear.weight": "head.attention.target.weight",
            "attention.target_linear.bias": "head.attention.target.bias", "fc.0.weight": "head.fc.0.weight",
            "fc.0.bias": "head.fc.0.bias", "classifier.weight": "head.classifier.weight",
            "classifier.bias": "head.classifier.bias"}  # fmt: skip
    for part in ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                 "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                 "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"):  # fmt: skip
        keys[f"tb.layers.0.{part}"] = f"head.encoder.{part}"
    for theirs, gate in GATES.items():
        keys[f"ggnn.{theirs}_w.weight"] = f"head.cell.w_{gate}.weight"
        keys[f"ggnn.{theirs}_u.weight"] = f"head.cell.u_{gate}.weight"
    return keys


def official_to_ours(official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ours = {f"backbone.body.{k.removeprefix('backbone.')}": v for k, v in official.items()
            if k.startswith("backbone.") and not k.startswith("backbone.fc.")}  # fmt: skip
    ours |= {mine: official[theirs] for theirs, mine in head_key_map().items()}
    for theirs, gate in GATES.items():  # W x + b_w + U h + b_u: one bias
        ours[f"head.cell.w_{gate}.bias"] = official[f"ggnn.{theirs}_w.bias"] + official[f"ggnn.{theirs}_u.bias"]
    return ours


def ours_to_official(ours: dict[str, torch.Tensor], official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(official)
    out |= {
        f"backbone.{k.removeprefix('backbone.body.')}": v for k, v in ours.items() if k.startswith("backbone.body.")
    }
    out |= {theirs: ours[mine] for theirs, mine in head_key_map().items()}
    for theirs, gate in GATES.items():
        out[f"ggnn.{theirs}_w.bias"] = ours[f"head.cell.w_{gate}.bias"]
        out[f"ggnn.{theirs}_u.bias"] = torch.zeros_like(official[f"ggnn.{theirs}_u.bias"])
    return out


def random_counts(num_scenes: int, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Symmetric co-occurrence counts, a different random pattern per scene (diagonal: the class counts)."""
    pairs = torch.randint(0, 50, (num_scenes, num_classes, num_classes), generator=generator).float()
    pairs = pairs * (torch.rand(num_scenes, num_classes, num_classes, generator=generator) < 0.3)
    counts = pairs + pairs.transpose(1, 2)
    return counts + torch.diag_embed(counts.sum(-1) + 1)


def load_official(checkout: Path):
    """The official ``SALGL`` class and its ResNet-101 factory, importable without CUDA or its vendored timm."""
    sys.path.insert(0, str(checkout))
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    package = types.ModuleType("models")
    package.__path__ = [str(checkout / "models")]
    sys.modules["models"] = package
    import models.resnet  # noqa: F401  (registers the backbone)
    from models.factory import create_backbone
    from models.salgl import SALGL

    return SALGL, create_backbone


def split_scenes(official: torch.nn.Module, images: torch.Tensor) -> None:
    """Scene weights that send image 0 to scene 0 and image 1 to scene 1 (random weights put both in one): rows
    +-u, u = c0 / |c0| - c1 / |c1| of the two images' contexts, so u . c0 >= 0 >= u . c1 (Cauchy-Schwarz)."""
    contexts = official.tb(official.backbone(images)).mean(1)  # (2, d)
    u = contexts[0] / contexts[0].norm() - contexts[1] / contexts[1].norm()
    weight = 0.01 * torch.randn_like(official.scene_linear.weight)
    weight[0], weight[1] = u * 4 / u.norm(), -u * 4 / u.norm()
    official.scene_linear.weight.copy_(weight)


def perturb(official: torch.nn.Module, seed: int) -> None:
    """Random counts per scene, gate biases and BatchNorm statistics."""
    generator = torch.Generator().manual_seed(seed)
    official.comatrix.copy_(random_counts(SCENES, NUM_CLASSES, generator))
    randomise_batchnorm(official, seed + 1)
    for name, module in official.named_modules():
        if name.startswith("ggnn.") and isinstance(module, torch.nn.Linear):
            module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


def our_model() -> torch.nn.Module:
    graph = LabelGraph.from_targets(torch.zeros(1, NUM_CLASSES, dtype=torch.int8).numpy(),
                                    [f"c{i}" for i in range(NUM_CLASSES)])  # fmt: skip
    graph.embeddings = torch.randn(NUM_CLASSES, EMBED)
    return create_model("salgl", num_classes=NUM_CLASSES, label_graph=graph, backbone="torchvision/resnet101")


@torch.no_grad()
def full_model_parity(SALGL, create_backbone, work: Path) -> dict[str, float]:
    images = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(2))
    embed_path = work / "embeddings.npy"
    numpy.save(embed_path, torch.randn(NUM_CLASSES, EMBED, generator=torch.Generator().manual_seed(5)).numpy())
    result = {}
    for soft in (False, True):
        torch.manual_seed(0)
        backbone, width = create_backbone("resnet101", False)
        official = SALGL(backbone, width, config(soft, embed_path)).eval()
        perturb(official, 1)
        ours = our_model().eval()
        ours.head.soft = soft
        normalised = ours.normalise(images)  # the ImageNet normalisation the official data pipeline applies
        split_scenes(official, normalised)
        missing, unexpected = ours.load_state_dict(official_to_ours(official.state_dict()), strict=False)
        assert not unexpected and set(missing) <= {"input_mean", "input_std"}, (missing, unexpected)
        theirs = official(normalised)
        scenes = theirs["scene_probs"].argmax(-1).tolist()
        mode = "soft" if soft else "hard"
        result[f"official -> ours, {mode} (scenes {scenes})"] = relative_difference(ours(images), theirs["logits"])
        torch.manual_seed(3)
        ours = our_model().eval()
        ours.head.soft = soft
        ours.head.comatrix.copy_(random_counts(SCENES, NUM_CLASSES, torch.Generator().manual_seed(4)))
        official.load_state_dict(ours_to_official(ours.state_dict(), official.state_dict()), strict=True)
        split_scenes(official, normalised)  # on our weights now, then the same scene weights in ours
        ours.head.scene_linear.weight.copy_(official.scene_linear.weight)
        theirs = official(normalised)
        scenes = theirs["scene_probs"].argmax(-1).tolist()
        result[f"ours -> official, {mode} (scenes {scenes})"] = relative_difference(ours(images), theirs["logits"])
        ours.head.comatrix.copy_(ours.head.comatrix.roll(1, dims=0))  # every scene given another's counts
        result[f"ours with the scenes' counts rotated, {mode} (must be large)"] = relative_difference(
            ours(images), official(normalised)["logits"]
        )
    return result


SMALL = {"width": 64, "classes": 10, "embed": 32, "tokens": 9}  # the stored reference's head


def seeded_head_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of a :data:`SMALL` head (our key names and shapes, drawn in sorted key order from ``seed``; norm
    gains near 1), random per-scene counts, and the tokens (2, 9, 64) and label embeddings it runs on."""
    generator = torch.Generator().manual_seed(seed)
    head = SALGLHead(SMALL["width"], SMALL["classes"], torch.zeros(SMALL["classes"], SMALL["embed"]))
    state = {}
    for key, value in sorted(head.state_dict().items()):
        drawn = torch.randn(value.shape, generator=generator) / max(value.shape[-1], 1) ** 0.5
        state[key] = drawn + 1 if key.endswith(("norm1.weight", "norm2.weight")) else drawn
    state["comatrix"] = random_counts(SCENES, SMALL["classes"], generator)
    state["label_embed"] = torch.randn(SMALL["classes"], SMALL["embed"], generator=generator)
    tokens = torch.randn(2, SMALL["tokens"], SMALL["width"], generator=generator)
    state["scene_linear.weight"] = state["scene_linear.weight"] * 3  # neither uniform nor one-hot
    return {**state, "tokens": tokens}


@torch.no_grad()
def head_reference(SALGL, work: Path) -> dict[str, torch.Tensor]:
    """The official head (a stub backbone handing it the tokens) on :func:`seeded_head_state`, hard and soft."""
    state = seeded_head_state()
    tokens = state.pop("tokens")
    numpy.save(work / "small.npy", state["label_embed"].numpy())
    reference = {"tokens": tokens}
    for soft in (False, True):
        cfg = config(soft, work / "small.npy", SMALL["classes"])
        official = SALGL(TokenStub(tokens), SMALL["width"], cfg).eval()
        mapped = ours_to_official({f"head.{k}": v for k, v in state.items()}, official.state_dict())
        official.load_state_dict(mapped, strict=True)
        output = official(torch.zeros(2, 3, 8, 8))
        reference[f"logits_{'soft' if soft else 'hard'}"] = output["logits"].contiguous()
        reference[f"scene_probs_{'soft' if soft else 'hard'}"] = output["scene_probs"].contiguous()
    return reference


class TokenStub(torch.nn.Module):
    """A backbone that returns the given tokens (B, P, d), whatever the images."""

    def __init__(self, tokens: torch.Tensor) -> None:
        super().__init__()
        self.tokens = tokens

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official", required=True, help="a checkout of jasonseu/SALGL")
    p.add_argument("--write-reference", action="store_true")
    args = p.parse_args()
    SALGL, create_backbone = load_official(Path(args.official))
    with tempfile.TemporaryDirectory() as work:
        if args.write_reference:
            from safetensors.torch import save_file

            save_file(head_reference(SALGL, Path(work)), REFERENCE)
            print(f"wrote {REFERENCE}")
        print(json.dumps(full_model_parity(SALGL, create_backbone, Path(work)), indent=1))


if __name__ == "__main__":
    main()
