"""The pipeline's report: report.md and report.html with charts, from the stages' figures.

Each model contributes one `ModelResult`; charts are PNG files beside the report
(matplotlib, drawn off-screen), so the report opens anywhere without a server.
"""
import csv
import dataclasses
import html
import os
from pathlib import Path
from typing import Optional

from keras_mobilenets.files import save_atomically, write_atomically


@dataclasses.dataclass
class TfliteResult:
    """One .tflite file: accuracy on the test split and its speed on this machine."""

    path: str
    quantization: str
    top1: float
    top5: float
    count: int
    size_bytes: int
    median_ms: float
    p90_ms: float
    partitions: int
    agreement: float  # share of test images where the file's top-1 is its source model's
    compared_with: str  # that source model: "model" (float) or "qat_model"
    median_ms_2_threads: float


@dataclasses.dataclass
class ModelResult:
    model: str
    run_dir: str
    keras_top1: float
    keras_top5: float
    files: list  # TfliteResult for float32, post-training int8, QAT int8
    confusion_matrix_png: Optional[str] = None
    seconds: Optional[float] = None

    def to_ship(self):
        """The int8 file to ship, and why: the fastest within 0.5 point of the best int8 top-1."""
        int8 = [tflite for tflite in self.files if "int8" in tflite.quantization]
        best = max(tflite.top1 for tflite in int8)
        close = [tflite for tflite in int8 if tflite.top1 >= best - 0.005]
        chosen = min(close, key=lambda tflite: tflite.median_ms)
        others = ", ".join(f"{t.quantization} {t.top1:.2%} at {t.median_ms:.2f} ms" for t in int8 if t is not chosen)
        return chosen, (f"{os.path.basename(chosen.path)}: the fastest int8 file ({chosen.median_ms:.2f} ms, "
                        f"1 thread) whose test top-1 ({chosen.top1:.2%}) is within 0.5 point of the best int8 "
                        f"file's ({best:.2%}); other: {others}")


def _read_history(run_dir, name):
    path = Path(run_dir) / name
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _training_curves(results, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for result in results:
        offset = 0  # QAT epochs continue after the float ones
        for history_name, style, label in (("history.csv", "-", ""), ("qat_history.csv", "--", " QAT")):
            rows = _read_history(result.run_dir, history_name)
            if not rows:
                continue
            epochs = [offset + index + 1 for index in range(len(rows))]
            offset += len(rows)
            for axis, key in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
                for prefix, alpha in (("", 0.5), ("val_", 1.0)):
                    if prefix + key in rows[0]:
                        values = [float(row[prefix + key]) for row in rows]
                        axis.plot(epochs, values, style, alpha=alpha,
                                  label=f"{result.model}{label} {prefix or 'train_'}{key}".replace("_", " "))
    for axis, title in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.legend(fontsize=7)
    return _save(figure, out_dir / "training_curves.png")


def _pareto(points):
    """Points (cost, accuracy) not beaten by a cheaper, at least as accurate one."""
    front, best = [], -1.0
    for cost, accuracy in sorted(points):
        if accuracy > best:
            front.append((cost, accuracy))
            best = accuracy
    return front


def _tradeoff_chart(results, out_dir, attribute, label, filename):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    points = []
    for result in results:
        for tflite, marker in zip(result.files, "osD"):
            cost = getattr(tflite, attribute)
            cost = cost / 1e6 if attribute == "size_bytes" else cost
            points.append((cost, tflite.top1))
            axis.scatter(cost, tflite.top1 * 100, marker=marker)
            axis.annotate(f"{result.model} {tflite.quantization}", (cost, tflite.top1 * 100),
                          fontsize=7, xytext=(4, 4), textcoords="offset points")
    front = _pareto(points)
    axis.plot([c for c, _ in front], [a * 100 for _, a in front], "k--", linewidth=0.8, label="Pareto front")
    axis.set_xlabel(label)
    axis.set_ylabel("test top-1 (%)")
    axis.legend(fontsize=7)
    return _save(figure, out_dir / filename)


def _save(figure, path):
    import matplotlib.pyplot as plt

    figure.tight_layout()
    save_atomically(path, lambda temporary: figure.savefig(temporary, dpi=110))

    plt.close(figure)
    return path.name


def _rows(results):
    header = ["model", "format", "test top-1", "test top-5", "agreement with source", "size (MB)",
              "median ms (1 thread)", "p90 ms", "median ms (2 threads)", "partitions"]
    rows = []
    for result in results:
        rows.append([result.model, "Keras float", f"{result.keras_top1:.2%}", f"{result.keras_top5:.2%}",
                     "", "", "", "", "", ""])
        for tflite in result.files:
            source = "QAT Keras" if tflite.compared_with == "qat_model" else "float Keras"
            rows.append([result.model, f"TFLite {tflite.quantization}", f"{tflite.top1:.2%}",
                         f"{tflite.top5:.2%}", f"{tflite.agreement:.2%} ({source})", f"{tflite.size_bytes / 1e6:.2f}",
                         f"{tflite.median_ms:.2f}", f"{tflite.p90_ms:.2f}", f"{tflite.median_ms_2_threads:.2f}",
                         str(tflite.partitions)])
    return header, rows


def _details(results, settings):
    """What produced the files: the settings the runs recorded, and which file to ship."""
    lines = [f"data set: {settings['dataset']}; image size {settings['image_size']}; {settings['epochs']} float "
             f"epochs, {settings['qat_epochs']} QAT epochs, batch size {settings['batch_size']}"]
    options = {key: settings[key] for key in ("weights", "freeze_epochs", "alpha", "learning_rate", "flip")
               if key in settings}
    lines.append("training options: " + ", ".join(f"{key} {value}" for key, value in options.items()))
    lines.append(f"latency: LiteRT on this machine's CPU, XNNPACK, median of {settings['benchmark_runs']} runs")
    for result in results:
        lines.append(f"{result.model}: ship {result.to_ship()[1]}")
        if result.seconds is not None:
            lines.append(f"{result.model}: {result.seconds:.0f} s for all stages")
    return lines


def write_report(results, out_dir, *, title, settings):
    """Write charts, report.md and report.html into out_dir; returns the path of report.html.

    `settings`: the settings the runs recorded (pipeline.settings_for), stated on the page.
    """
    out_dir = Path(out_dir)
    details = _details(results, settings)
    charts = [
        ("Training curves", _training_curves(results, out_dir)),
        ("Accuracy against latency", _tradeoff_chart(results, out_dir, "median_ms", "median latency (ms, 1 thread)", "accuracy_vs_latency.png")),
        ("Accuracy against size", _tradeoff_chart(results, out_dir, "size_bytes", "file size (MB)", "accuracy_vs_size.png")),
    ]
    for result in results:
        if result.confusion_matrix_png:
            charts.append((f"Confusion matrix: {result.model}", os.path.relpath(result.confusion_matrix_png, out_dir)))
    header, rows = _rows(results)

    markdown = [f"# {title}", "", *[f"- {line}" for line in details], ""]
    markdown += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    markdown += ["| " + " | ".join(row) + " |" for row in rows]
    for caption, image in charts:
        markdown += ["", f"## {caption}", "", f"![{caption}]({image})"]

    table = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    table = f"<tr>{table}</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
        *[f"<li>{html.escape(line)}</li>" for line in details],
        f"</ul><table>{table}</table>",
        *[f"<h2>{html.escape(caption)}</h2><img src='{html.escape(image)}' alt='{html.escape(caption)}'>"
          for caption, image in charts],
        "</body></html>",
    ]
    write_atomically(out_dir / "report.md", "\n".join(markdown) + "\n")
    return write_atomically(out_dir / "report.html", "\n".join(page))
