"""Exported models on the Hugging Face Hub: ``hf-hub:ORG/NAME[@REVISION]`` wherever a model folder is accepted.

An exported labelgraph model is a folder of ``config.json`` + safetensors, so a Hub repository holding that folder is
a model: :func:`model_folder` downloads it into the Hugging Face cache (``huggingface_hub.snapshot_download``, only
the files a model needs) and returns the local snapshot, which ``load_model`` reads as any folder. With
``HF_HUB_OFFLINE=1`` the cache alone answers, so a model fetched once keeps working without a network.
"""

from __future__ import annotations

from pathlib import Path

from labelgraph.errors import InvalidInputError

HF_HUB_PREFIX = "hf-hub:"
MODEL_FILES = ["config.json", "*.safetensors", "README.md"]  # what a model folder needs (and its card)


def is_hub_source(source: object) -> bool:
    return isinstance(source, str) and source.startswith(HF_HUB_PREFIX)


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """``hf-hub:ORG/NAME@REV`` -> ``("ORG/NAME", "REV")`` (revision None: the default branch)."""
    repo, _, revision = source.removeprefix(HF_HUB_PREFIX).partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise InvalidInputError(f"{source!r}: a Hub model is named hf-hub:ORG/NAME (optionally @REVISION)")
    return repo, revision or None


def model_folder(source: str | Path) -> Path:
    """The local folder of a model source: a path as given, or the cached snapshot of ``hf-hub:ORG/NAME``."""
    if not is_hub_source(source):
        return Path(source)
    repo, revision = parse_hub_source(str(source))
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as err:
        raise InvalidInputError(f"{source}: Hub models need huggingface_hub: pip install 'labelgraph[hub]'") from err
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES)
    except LocalEntryNotFoundError as err:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise InvalidInputError(f"{source}: not in the Hugging Face cache ({HF_HUB_CACHE}) and the Hub was not "
                                "reached (HF_HUB_OFFLINE=1, or no network): fetch it once online") from err  # fmt: skip
    except RepositoryNotFoundError as err:
        raise InvalidInputError(f"{source}: no such model repository on the Hub (or it is private: log in)") from err
    except HfHubHTTPError as err:
        raise InvalidInputError(f"{source}: the Hub refused the download ({err})") from err
    return Path(folder)
