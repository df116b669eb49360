"""The pipeline's report: one self-contained report.html (phone and laptop) and report.md, same figures.

Each model contributes one `ModelResult`, built from what its run recorded
(pipeline.py `model_result`). The page is first a list of blocks (headings,
text, tables, figures), then written twice: as Markdown with the PNGs beside
it, and as HTML with the PNGs embedded as data URIs, so that it opens
anywhere, with no network and no server.
"""
import base64
import dataclasses
import html
import os
from pathlib import Path
from typing import Optional

from keras_mobilenets.app import report_charts
from keras_mobilenets.files import write_atomically

GALLERY_SIZE = 12  # misclassified test images shown per model
CONFIDENCE = 0.95


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
    predictions: dict  # per test image: label, top_k, score, source_top1 (tflite accuracy.evaluate's per_image)


@dataclasses.dataclass
class ModelResult:
    model: str
    run_dir: str
    keras_top1: float
    keras_top5: float
    files: list  # TfliteResult for float32, post-training int8, QAT int8
    class_names: list
    training: dict  # the run's config.json: what training was given and chose
    qat: dict  # the settings the QAT stage ran with, as the pipeline recorded them
    params: int
    macs: int
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

    def float_top1(self):
        """The float Keras model's top-1 per test image: the source of the float32 file's evaluation."""
        float_file = next(t for t in self.files if t.compared_with == "model" and "int8" not in t.quantization)
        return float_file.predictions["source_top1"]


def interval(accuracy, count):
    """The 95% confidence interval (Wilson) of an accuracy measured on `count` images."""
    from scipy.stats import binomtest

    found = binomtest(round(accuracy * count), count).proportion_ci(CONFIDENCE, method="wilson")
    return float(found.low), float(found.high)


def per_class(labels, predicted, class_names):
    """Rows (class, images, correct, precision, recall, F1) per class, then their macro average."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    classes = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes,
                                                                     zero_division=0)
    correct = np.bincount(np.asarray(labels)[np.asarray(labels) == np.asarray(predicted)], minlength=len(classes))
    rows = [{"class": name, "images": int(support[index]), "correct": int(correct[index]),
             "precision": float(precision[index]), "recall": float(recall[index]), "f1": float(f1[index])}
            for index, name in enumerate(class_names)]
    rows.append({"class": "macro average", "images": int(sum(support)), "correct": int(sum(correct)),
                 "precision": float(np.mean(precision)), "recall": float(np.mean(recall)), "f1": float(np.mean(f1))})
    return rows


def _with_interval(accuracy, count):
    low, high = interval(accuracy, count)
    return f"{accuracy:.2%} [{low:.1%}, {high:.1%}]"


def _summary_table(results):
    """Every .tflite of every model, fastest first."""
    top5 = any(len(result.class_names) > 5 for result in results)
    header = ["model", "file", "test top-1 [95% interval]", *(["test top-5"] if top5 else []),
              "agrees with its Keras model", "size (MB)", "median ms, 1 thread", "p90 ms", "median ms, 2 threads",
              "XNNPACK partitions"]
    files = sorted(((result, tflite) for result in results for tflite in result.files),
                   key=lambda pair: pair[1].median_ms)
    rows = []
    for result, tflite in files:
        source = "QAT" if tflite.compared_with == "qat_model" else "float"
        rows.append([result.model, tflite.quantization, _with_interval(tflite.top1, tflite.count),
                     *([f"{tflite.top5:.2%}" if len(result.class_names) > 5 else "-"] if top5 else []),
                     f"{tflite.agreement:.2%} ({source})", f"{tflite.size_bytes / 1e6:.2f}",
                     f"{tflite.median_ms:.2f}", f"{tflite.p90_ms:.2f}", f"{tflite.median_ms_2_threads:.2f}",
                     str(tflite.partitions)])
    return ("table", header, rows)


def _settings_table(values):
    shown = {key: value for key, value in values.items() if key != "class_names"}
    return ("table", ["setting", "value"], [[key, _plain(value)] for key, value in shown.items()])


def _plain(value):
    if isinstance(value, dict):
        return ", ".join(f"{key} {_plain(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "x".join(str(item) for item in value)
    return "-" if value is None else str(value)


def _gallery(result, shipped, path):
    """The shipped file's first misclassified test images with true, file's and (where it differs) float's class."""
    from keras_mobilenets.training.runs import Run

    predictions = shipped.predictions
    predicted = [top[0] for top in predictions["top_k"]]
    floats = result.float_top1()
    wrong = [index for index, (label, guess) in enumerate(zip(predictions["label"], predicted)) if label != guess]
    shown = wrong[:GALLERY_SIZE]
    if not shown:
        return None, 0
    images = {}
    for index, (image, label) in enumerate(Run(result.run_dir).splits().test.take(shown[-1] + 1)):
        if index in shown:
            if int(label) != predictions["label"][index]:
                raise ValueError(f"run {result.run_dir}: its test split is not the one the files were evaluated "
                                 "on; run the pipeline again with --redo")
            images[index] = image.numpy()
    names = result.class_names
    short = "int8" if "int8" in shipped.quantization else shipped.quantization
    captions = []
    for index in shown:
        caption = f"true {names[predictions['label'][index]]}\n{short} {names[predicted[index]]}" \
                  f" ({predictions['score'][index]:.2f})"
        if floats[index] != predicted[index]:
            caption += f"\nfloat {names[floats[index]]}"
        captions.append(caption)
    report_charts.mistakes([images[index] for index in shown], captions, path)
    return path, len(wrong)


def _history(run_dir, name):
    import csv

    path = Path(run_dir) / name
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _model_blocks(result, out_dir):
    from keras_mobilenets.training import runs

    shipped, reason = result.to_ship()
    shipped_name = os.path.basename(shipped.path)
    predicted = [top[0] for top in shipped.predictions["top_k"]]
    size = result.training.get("image_size")
    keras_top5 = f"; top-5 {result.keras_top5:.2%}" if len(result.class_names) > 5 else ""
    blocks = [
        ("h2", result.model),
        ("p", f"{result.params:,} parameters, {result.macs:,} multiply-adds per {size}x{size} image; "
              f"{len(result.class_names)} classes. Keras float model: test top-1 "
              f"{_with_interval(result.keras_top1, shipped.count)}{keras_top5}."),
        ("p", f"{result.model}: ship {reason}."),
        ("h3", f"Confusion matrix of {shipped_name}"),
        ("image", f"{result.model}: confusion matrix of {shipped_name} on the test split",
         report_charts.confusion(shipped.predictions["label"], predicted, result.class_names,
                                 out_dir / f"confusion_{result.model}.png",
                                 title=f"{result.model} {shipped.quantization}: {shipped.count} test images")),
        ("h3", f"Per class: {shipped_name}"),
        ("table", ["class", "test images", "correct", "precision", "recall (class accuracy)", "F1"],
         [[row["class"], str(row["images"]), str(row["correct"]), f"{row['precision']:.1%}",
           f"{row['recall']:.1%}", f"{row['f1']:.1%}"]
          for row in per_class(shipped.predictions["label"], predicted, result.class_names)]),
        ("h3", f"Misclassified by {shipped_name}"),
    ]
    gallery, wrong = _gallery(result, shipped, out_dir / f"mistakes_{result.model}.png")
    if gallery is None:
        blocks.append(("p", "No test image is misclassified."))
    else:
        blocks += [("p", f"The first {min(wrong, GALLERY_SIZE)} of the {wrong} test images it gets wrong: true "
                         "class, its class (probability), and the float Keras model's class where it differs."),
                   ("image", f"{result.model}: misclassified test images", gallery)]
    blocks += [
        ("h3", "Training curves"),
        ("image", f"{result.model}: loss, accuracy and learning rate per epoch",
         report_charts.training_curves(result.model, _history(result.run_dir, runs.HISTORY),
                                       _history(result.run_dir, runs.QAT_HISTORY),
                                       out_dir / f"training_curves_{result.model}.png",
                                       qat_learning_rate=result.qat.get("learning_rate"))),
        ("h3", "Settings that produced the files"),
        ("p", f"Training, as {runs.CONFIG} of the run recorded it:"),
        _settings_table(result.training),
        ("p", "Quantization-aware training, as the pipeline recorded it (Adam; the float run's loss):"),
        _settings_table(result.qat),
    ]
    return blocks


def _blocks(results, out_dir, title, settings):
    files = [(result, tflite) for result in results for tflite in result.files]
    count = files[0][1].count

    def points(cost):
        return [(f"{result.model} {tflite.quantization}", cost(tflite), tflite.top1, interval(tflite.top1, tflite.count))
                for result, tflite in files]

    blocks = [
        ("h1", title),
        ("list", [f"data set: {settings['dataset']}; image size {settings['image_size']}; {settings['epochs']} float "
                  f"epochs, {settings['qat_epochs']} QAT epochs, batch size {settings['batch_size']}",
                  f"latency: LiteRT on this machine's CPU, XNNPACK, median of {settings['benchmark_runs']} runs",
                  *(f"{result.model}: {result.seconds:.0f} s for all stages" for result in results
                    if result.seconds is not None)]),
        ("p", f"The test split is small ({count} images): every accuracy comes with its 95% confidence interval "
              "(Wilson), and files whose intervals overlap may not differ at all."),
        _summary_table(results),
        ("h2", "Accuracy against latency"),
        ("image", "test top-1 against median latency, every file, with the Pareto front",
         report_charts.tradeoff(points(lambda tflite: tflite.median_ms), out_dir / "accuracy_vs_latency.png",
                                xlabel="median latency (ms, 1 thread)")),
        ("h2", "Accuracy against size"),
        ("image", "test top-1 against file size, every file, with the Pareto front",
         report_charts.tradeoff(points(lambda tflite: tflite.size_bytes / 1e6), out_dir / "accuracy_vs_size.png",
                                xlabel="file size (MB)")),
    ]
    for result in results:
        blocks += _model_blocks(result, out_dir)
    return blocks


def _markdown(blocks, out_dir):
    lines = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + content[0], ""]
        elif kind == "p":
            lines += [content[0], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in content[0]] + [""]
        elif kind == "table":
            header, rows = content
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
        elif kind == "image":
            caption, path = content
            lines += [f"![{caption}]({os.path.relpath(path, out_dir)})", ""]
    return "\n".join(lines)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;line-height:1.45;color:#222;
     max-width:1100px;margin:0 auto;padding:0 12px 2em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:0.5em 0}
table{border-collapse:collapse;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;white-space:normal;vertical-align:bottom}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}
figure{margin:0.5em 0}img{max-width:100%;height:auto}figcaption{font-size:0.85em;color:#555}
@media (max-width:600px){body{font-size:15px}table{font-size:0.8em}td,th{padding:3px 5px}
  figure.wide{overflow-x:auto}figure.wide img{max-width:none;width:640px}}
"""
WIDE_PIXELS = 900  # figures wider than this (curves, galleries) scroll sideways on a phone instead of shrinking


def _html(blocks, title):
    page = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"]
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            page.append(f"<{kind}>{html.escape(content[0])}</{kind}>")
        elif kind == "list":
            page.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in content[0]) + "</ul>")
        elif kind == "table":
            header, rows = content
            cells = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                           for row in rows)
            page.append(f"<div class='scroll'><table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table></div>")
        elif kind == "image":
            caption, path = content
            png = Path(path).read_bytes()
            wide = " class='wide'" if int.from_bytes(png[16:20], "big") > WIDE_PIXELS else ""  # PNG header: width
            data = base64.b64encode(png).decode("ascii")
            page.append(f"<figure{wide}><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    page.append("</body></html>")
    return "\n".join(page)


def write_report(results, out_dir, *, title, settings):
    """Write the figures (PNG), report.md and report.html into out_dir; returns the path of report.html.

    `settings`: the settings the runs recorded (pipeline.settings_for), stated on the page.
    """
    out_dir = Path(out_dir)
    blocks = _blocks(results, out_dir, title, settings)
    write_atomically(out_dir / "report.md", _markdown(blocks, out_dir))
    return write_atomically(out_dir / "report.html", _html(blocks, title))
