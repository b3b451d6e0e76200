"""Publish an exported model on the Hugging Face Hub (``labelgraph export ... --push-to-hub ORG/NAME``).

The folder is uploaded as it is -- ``config.json``, ``model.safetensors``, ``label_graph.safetensors`` -- with a
generated model card (:mod:`labelgraph.apis.model_card`) as its ``README.md``; ``labelgraph.load("hf-hub:ORG/NAME")``
reads it back. The token is huggingface_hub's (``HF_TOKEN``, or ``hf auth login``); ``HF_ENDPOINT`` points it at
another Hub (a mirror, or the loopback server of the tests).
"""

from __future__ import annotations

from pathlib import Path

from labelgraph.apis.model_card import write_model_card
from labelgraph.errors import InvalidInputError
from labelgraph.models.hub_source import MODEL_FILES, parse_hub_source


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload labelgraph model",
) -> str:
    """Create ``repo_id`` if needed, write the card and upload the model folder; return the commit's URL."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise InvalidInputError(f"{folder}: not an exported labelgraph model (config.json + model.safetensors)")
    parse_hub_source(f"hf-hub:{repo_id}")  # the same naming rule as loading
    try:
        from huggingface_hub import HfApi
    except ImportError as err:
        raise InvalidInputError("pushing to the Hub needs huggingface_hub: pip install 'labelgraph[hub]'") from err
    write_model_card(folder, repo_id)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        allow_patterns=MODEL_FILES,
        commit_message=commit_message,
        repo_type="model",
    )
    return str(commit.commit_url)
