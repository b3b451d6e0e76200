"""Ten real photographs no one here made, labelled by hand: darknet's seven (shipped in ``data/photos``),
scikit-learn's two sample images and matplotlib's portrait of Grace Hopper. Eight classes, one unknown entry (the
figure in The Scream), one image with none of the classes (a dahlia). ``labelgraph train``'s real-photo test and the
fastai benchmark read them."""

from __future__ import annotations

from pathlib import Path

DARKNET = Path(__file__).resolve().parents[1] / "data" / "photos"


def real_photo_rows() -> list[tuple[Path, str]]:
    """``(image, labels)`` in the custom CSV notation (``a|b``, ``?c`` unknown, empty for none)."""
    import matplotlib
    import sklearn.datasets

    sk = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    return [
        (DARKNET / "dog.jpg", "dog|tree"), (DARKNET / "eagle.jpg", "bird|water"),
        (DARKNET / "giraffe.jpg", "tree|grass"), (DARKNET / "horses.jpg", "horse|sky|grass"),
        (DARKNET / "kite.jpg", "person|sky|water"), (DARKNET / "person.jpg", "person|dog|horse|sky|grass"),
        (DARKNET / "scream.jpg", "sky|water|?person"), (sk / "china.jpg", "tree|water|sky"), (sk / "flower.jpg", ""),
        (mpl / "grace_hopper.jpg", "person"),
    ]  # fmt: skip


def write_real_photos_csv(folder: Path) -> Path:
    """The photos as ``folder/photos.csv`` (absolute paths)."""
    path = Path(folder) / "photos.csv"
    path.write_text("image,labels\n" + "".join(f"{image},{labels}\n" for image, labels in real_photo_rows()))
    return path
