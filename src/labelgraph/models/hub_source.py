"""Exported models on the Hugging Face Hub: ``hf-hub:ORG/NAME[@REVISION]`` wherever a model folder is accepted.

An exported labelgraph model is a folder of ``config.json`` + safetensors, so a Hub repository holding that folder is
a model: :func:`model_folder` downloads it into the Hugging Face cache (``huggingface_hub.snapshot_download``, only
the files a model needs) and returns the local snapshot, which ``load_model`` reads as any folder. With
``HF_HUB_OFFLINE=1`` the cache alone answers, so a model fetched once keeps working without a network.
"""

from __future__ import annotations

import re
from pathlib import Path

from labelgraph.errors import InvalidInputError

HF_HUB_PREFIX = "hf-hub:"
MODEL_FILES = ["config.json", "*.safetensors", "README.md", "model.onnx"]  # what a model folder holds (+ card, ONNX)
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,254}")


def is_hub_source(source: object) -> bool:
    return isinstance(source, str) and source.startswith(HF_HUB_PREFIX)


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """``hf-hub:ORG/NAME@REV`` -> ``("ORG/NAME", "REV")`` (revision None: the default branch). The repository id must
    follow the Hub's rules and the revision be a branch, tag or commit name (letters, digits, ``. _ - /``, no ``..``
    and no leading ``/``): a name that would lead a reader out of the cache's ``refs/`` is refused."""
    repo, _, revision = source.removeprefix(HF_HUB_PREFIX).partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")) or not valid_repo_id(repo):
        raise InvalidInputError(f"{source!r}: a Hub model is named hf-hub:ORG/NAME (optionally @REVISION)")
    if revision and (not REVISION.fullmatch(revision) or ".." in revision.split("/") or revision.startswith("/")):
        raise InvalidInputError(f"{source!r}: {revision!r} is not a branch, tag or commit name")
    return repo, revision or None


def valid_repo_id(repo: str) -> bool:
    try:
        from huggingface_hub.utils import HFValidationError, validate_repo_id
    except ImportError:  # the message about the missing package comes when the model is fetched
        return True
    try:
        validate_repo_id(repo)
    except HFValidationError:
        return False
    return True


def model_folder(source: str | Path) -> Path:
    """The local folder of a model source: a path as given, or the cached snapshot of ``hf-hub:ORG/NAME``."""
    if not is_hub_source(source):
        return Path(source)
    repo, revision = parse_hub_source(str(source))
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError as err:
        raise InvalidInputError(f"{source}: Hub models need huggingface_hub: pip install 'labelgraph[hub]'") from err
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES)
    except LocalEntryNotFoundError as err:
        where = constants.HF_HUB_CACHE
        raise InvalidInputError(
            f"{source}: not in the Hugging Face cache ({where}) and the Hub was not reached "
            "(HF_HUB_OFFLINE=1, or no network): fetch it once online"
        ) from err
    except RepositoryNotFoundError as err:
        raise InvalidInputError(f"{source}: no such model repository on the Hub (or it is private: log in)") from err
    except HfHubHTTPError as err:
        raise InvalidInputError(f"{source}: the Hub refused the download ({err})") from err
    cache = Path(constants.HF_HUB_CACHE).resolve()
    if not Path(folder).resolve().is_relative_to(cache):  # a refs/ file naming a path, not a commit
        raise InvalidInputError(f"{source}: its cached snapshot resolves outside the Hugging Face cache ({cache})")
    return Path(folder)
