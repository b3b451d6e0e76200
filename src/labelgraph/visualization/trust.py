"""The "how far to trust this model" part of a report: thresholds with the evidence behind them, calibration error
before and after with a reliability diagram, the recall rule, and the labels the model doubts (as thumbnails) --
every number with the split it was measured on. ``labelgraph train``'s report and ``labelgraph audit``'s page use it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from PIL import Image  # noqa: E402

from labelgraph.apis.calibration import scaling_text  # noqa: E402
from labelgraph.data.image_io import read_image  # noqa: E402
from labelgraph.files import literal_text

THUMBNAIL = 160  # pixels, the longer side of an audited image's thumbnail
KIND_WORDS = {"missing": "a missed positive? (given absent)", "spurious": "a wrong tag? (given present)"}


def png_tag(picture: Path | Image.Image | plt.Figure) -> str:
    """An ``<img>`` with the picture embedded as base64 PNG: a PNG file, a PIL image, or a figure (closed once
    drawn)."""
    if isinstance(picture, Path):
        data = picture.read_bytes()
    else:
        buffer = io.BytesIO()
        if isinstance(picture, plt.Figure):
            literal_text(picture).savefig(buffer, format="png", dpi=100)
            plt.close(picture)
        else:
            picture.save(buffer, format="PNG")
        data = buffer.getvalue()
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def reliability_figure(curves: dict[str, dict[str, Any]], where: str) -> plt.Figure:
    """The reliability diagram -- observed frequency against predicted probability, per bin -- of each entry of
    ``curves`` (a name -> ``edges`` and, per bin, ``count``, ``confidence``, ``frequency``), and how many entries each
    bin of the last one holds."""
    last_name, last = list(curves.items())[-1]
    edges = np.asarray(last["edges"], dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, (ax, ax_count) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    for (name, b), marker in zip(curves.items(), "osD^v<>", strict=False):
        conf = np.array([np.nan if v is None else v for v in b["confidence"]], dtype=float)
        freq = np.array([np.nan if v is None else v for v in b["frequency"]], dtype=float)
        ax.plot(conf, freq, linewidth=1.5, markersize=4, marker=marker, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability (bin mean)", ylabel="fraction present")
    ax.set_title(f"Reliability on {where}", fontsize=9)
    ax.legend(fontsize="small", loc="upper left")
    ax.grid(alpha=0.3)
    counts = np.array([0 if v is None else v for v in last["count"]], dtype=float)
    ax_count.bar(centres, counts, width=edges[1] - edges[0], color="#1f77b4", alpha=0.7)
    ax_count.set(xlim=(0, 1), xlabel=f"predicted probability ({last_name})", ylabel="entries per bin")
    filled = counts[counts > 0]
    if len(filled) and filled.max() > 30 * filled.min():  # most entries sit near 0: a linear axis hides the rest
        ax_count.set_yscale("log")
        ax_count.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_count.set_title("How many (image, class) entries", fontsize=9)
    literal_text(fig).tight_layout()
    return fig


def thresholds_table(calibration: dict[str, Any]) -> str:
    """Each class's threshold with the positives behind it, its own optimum and its weight; thin classes marked."""
    few = set(calibration["few_positives"])
    rows = []
    for name, t in calibration["thresholds"].items():
        s = calibration["support"][name]
        own = "-" if s["own"] is None else f"{s['own']:.3f}"
        mark = " class='few'" if name in few else ""
        rows.append(
            f"<tr{mark}><td>{html.escape(name)}</td><td>{t:.3f}</td><td>{s['positives']}</td>"
            f"<td>{s['negatives']}</td><td>{own}</td><td>{s['weight']:.2f}</td></tr>"
        )
    head = (
        "<tr><th>class</th><th>threshold</th><th>positives</th><th>negatives</th><th>its own optimum</th>"
        "<th>weight of its own</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def measured_line(m: dict[str, Any] | None) -> str:
    if m is None:
        return ""
    c, half = m["calibrated"], m["threshold_0.5"]
    return (
        f"<li><b>{html.escape(m['where'])}</b> ({m['images']} images): CF1 {c['CF1']:.2f} and OF1 "
        f"{c['OF1']:.2f} at the calibrated thresholds (CF1 {half['CF1']:.2f}, OF1 {half['OF1']:.2f} at 0.5); ECE "
        f"{m['ece_before']:.2f} % for the network's probabilities, {m['ece_after']:.2f} % scaled</li>"
    )


def recall_html(calibration: dict[str, Any]) -> str:
    rule = calibration["recall_rule"]
    if rule is None:
        return "<p>No recall rule was fitted.</p>"
    text = (
        f"<p><code>--threshold recall</code> predicts every class with p &ge; {rule['threshold']:.4g}: "
        f"{html.escape(rule['guarantee'])}. On the calibration split it kept {rule['calibration_recall']:.3f} of "
        f"the true labels with {rule['mean_labels']:.2f} labels per image (in-sample).</p>"
    )
    if not rule["attainable"]:
        text += (
            "<p class='warn'>Too few calibration images for this recall: the rule predicts every label (the only "
            "set that keeps the guarantee). Calibrate on a larger split.</p>"
        )
    m = calibration["out_of_sample"]
    if m is not None and m.get("recall_rule"):
        r = m["recall_rule"]
        text += (
            f"<p>Measured on {html.escape(m['where'])}: recall {r['recall']}, {r['labels_per_image']} labels "
            "per image.</p>"
        )
    return text


def suspects_html(entries: list[dict[str, Any]], count: int | None = None) -> str:
    """The audited entries as cards: the image, the label in question, what was given, the model's probability, the
    suspicion and the image's other labels that bear on it (P(label | other), leaving the image out)."""
    if not entries:
        return "<p>(nothing to audit)</p>"
    cards = []
    for e in entries[:count]:
        try:  # a camera photo decoded at the DCT scale of its thumbnail, as the data pipeline reads it
            pixels = read_image(e["image"], (THUMBNAIL, THUMBNAIL)).permute(1, 2, 0).numpy()
            img = Image.fromarray(pixels)
            img.thumbnail((THUMBNAIL, THUMBNAIL))
            picture = png_tag(img)
        except (OSError, ValueError):
            picture = "<p>(image unreadable)</p>"
        where = f" ({html.escape(e['split'])})" if e.get("split") else ""
        bearing = ", ".join(f"{html.escape(n)} ({'-' if p is None else f'{p:.2f}'})" for n, p in e["neighbours"]) or "-"
        cards.append(
            f"<div class='card'>{picture}<p><b>{html.escape(e['label'])}</b>: {KIND_WORDS.get(e['kind'], e['kind'])}"
            f"<br>model p = {e['probability']:.3f}, suspicion {e['suspicion']:.3f}"
            f"<br>its labels: {html.escape(', '.join(e['image_labels']) or '-')}"
            f"<br>P({html.escape(e['label'])} | other label): {bearing}"
            f"<br><small>{html.escape(Path(e['image']).name)}{where}</small></p></div>"
        )
    return "".join(cards)


def trust_section(trust: dict[str, Any]) -> str:
    """The report's section, from ``results.json``'s ``trust`` record (:mod:`labelgraph.studies.trust_record`)."""
    c = trust["calibration"]
    few = c["few_positives"]
    warn = (
        (
            f"<p class='warn'>{len(few)} class(es) have fewer than 5 positives in {html.escape(c['calibrated_on'])} "
            f"(marked): their thresholds rest on few positives (each pulled toward the pooled one, "
            f"{c['global_threshold']:.3f}, by its weight below). Label more of them for thresholds that hold.</p>"
        )
        if few
        else ""
    )
    measured = "".join(measured_line(c[k]) for k in ("held_out", "cross_fitted"))
    if not measured:
        measured = "<li>Too few images to measure anything out of sample.</li>"
    m = c["out_of_sample"]
    figure = ""
    if m is not None:
        r = m["reliability"]
        curves = {
            "network's probabilities": {"edges": r["edges"], **r["before"]},
            "scaled (calibrated)": {"edges": r["edges"], **r["after"]},
        }
        figure = png_tag(reliability_figure(curves, m["where"]))
    audit = trust["label_audit"]
    return f"""
<h2>How far to trust this model</h2>
<p>The scaling of the logits, the thresholds and the recall rule were fitted on
{html.escape(c["calibrated_on"])}; every number below says where it was measured. Numbers measured on the images
they were fitted on flatter them and are not shown here (they are in <code>metrics.json</code>, labelled
<code>in_sample</code>).</p>
<h3>Thresholds</h3><p>{html.escape(c["rule"][0].upper() + c["rule"][1:])}.</p>{warn}{thresholds_table(c)}
<h3>Measured where they were not fitted</h3><ul>{measured}</ul>
<h3>Calibrated probabilities</h3><p>The served probabilities are {html.escape(scaling_text(c["scaling"]))}.
Expected calibration error (ECE): 15 equal-width bins, every known (image, class) entry once.</p>{figure}
<h3>Tag sets with a guaranteed recall</h3>{recall_html(c)}
<h3>Labels to double-check</h3><p>{html.escape(audit["how"])}.</p>{suspects_html(audit["entries"])}
"""
