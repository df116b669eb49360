"""The report: its figures against `evaluate` and `benchmark` run on their own and against scikit-learn,
drawn again from a run without evaluating, and looked at in a real headless Chromium."""
import base64
import re
import shutil

import numpy as np
import pytest
from sklearn.metrics import classification_report

from keras_mobilenets.app import cli, pipeline, report, report_charts
from keras_mobilenets.tflite.accuracy import evaluate
from keras_mobilenets.tflite.latency import benchmark
from keras_mobilenets.training.runs import Run


def markdown_tables(text, first_header):
    """The rows (lists of cells) of each Markdown table whose header starts with `first_header`."""
    lines = text.splitlines()
    tables = []
    for start in (i for i, line in enumerate(lines[:-1])
                  if line.startswith(f"| {first_header} |") and lines[i + 1].startswith("|---")):
        rows = []
        for line in lines[start + 2:]:
            if not line.startswith("|"):
                break
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        tables.append(rows)
    return tables


def markdown_table(text, first_header):
    table, = markdown_tables(text, first_header)
    return table


def embedded_images(html):
    sources = re.findall(r"<img src='([^']*)'", html)
    return [base64.b64decode(source.split(",", 1)[1]) for source in sources if source.startswith("data:image/png")], sources


@pytest.mark.slow
def test_report_figures_against_evaluate_benchmark_and_scikit_learn(tiny_pipeline):
    run_dir, _ = tiny_pipeline
    run = Run(run_dir)
    markdown = (run_dir / "report.md").read_text()
    result = pipeline.model_result(run_dir)
    shipped, _ = result.to_ship()
    assert f"ship {shipped.path.rsplit('/', 1)[-1]}" in markdown

    summary = markdown_table(markdown, "model")
    assert [float(row[6]) for row in summary] == sorted(float(row[6]) for row in summary)  # fastest first
    test = run.splits().test
    for tflite in result.files:
        source = run.qat_model() if tflite.compared_with == "qat_model" else run.float_model()
        found = evaluate(tflite.path, test, keras_model=source, progress=False, per_image=True)
        row, = [row for row in summary if row[1] == tflite.quantization]
        low, high = report.interval(found["top1"], found["count"])
        assert low < found["top1"] < high or found["top1"] in (0.0, 1.0)
        assert row[2] == f"{found['top1']:.2%} [{low:.1%}, {high:.1%}]"
        assert row[3] == f"{found['top5']:.2%}"  # 10 classes: top-5 is shown
        assert row[4].startswith(f"{found['agreement_top1']:.2%}")
        assert found["per_image"] == {key: run.predictions(tflite.path)[key]
                                      for key in ("label", "top_k", "score", "source_top1")}
        measured = benchmark(tflite.path, runs=5)
        assert row[5] == f"{measured['size_bytes'] / 1e6:.2f}"
        assert row[9] == str(measured["partitions"])
        if tflite is shipped:
            predicted = [top[0] for top in found["per_image"]["top_k"]]
            expected = classification_report(found["per_image"]["label"], predicted, labels=list(range(10)),
                                             target_names=result.class_names, output_dict=True, zero_division=0)
            table = markdown_table(markdown, "class")
            assert [row[0] for row in table] == [*result.class_names, "macro average"]
            for name, images, correct, precision, recall, f1 in table:
                figures = expected[name if name != "macro average" else "macro avg"]
                assert int(images) == figures["support"]
                assert (precision, recall, f1) == tuple(f"{figures[key]:.1%}"
                                                        for key in ("precision", "recall", "f1-score"))
            assert int(table[-1][2]) == round(found["top1"] * found["count"])
            wrong = sum(label != guess for label, guess in zip(found["per_image"]["label"], predicted))
            assert (f"of the {wrong} test images it gets wrong" in markdown) == (wrong > 0)

    training, qat = markdown_tables(markdown, "setting")  # as the run recorded them
    for key in ("optimizer", "learning_rate", "label_smoothing", "bn_momentum", "epochs"):
        assert [key, str(run.config[key])] in training
    assert ["learning_rate", "3e-05"] in qat and ["epochs", "1"] in qat


@pytest.mark.slow
def test_report_command_redraws_from_the_run_without_evaluating(tiny_pipeline, tmp_path, capsys):
    made, _ = tiny_pipeline
    run_dir = tmp_path / "run"
    shutil.copytree(made, run_dir)
    before = (run_dir / "report.md").read_text()
    for tflite in run_dir.glob("*.tflite"):  # nothing can be evaluated or benchmarked again
        tflite.unlink()
    (run_dir / "report.md").unlink()
    assert cli.main(["report", "--run", str(run_dir)]) == 0
    assert f"report: {run_dir / 'report.html'}" in capsys.readouterr().out
    assert (run_dir / "report.md").read_text() == before
    (run_dir / "model_int8.predictions.json").unlink()
    with pytest.raises(FileNotFoundError, match="model_int8.predictions.json"):
        pipeline.model_result(run_dir)


@pytest.mark.slow
def test_report_in_headless_chromium(tiny_pipeline):
    from keras_mobilenets.app import report_browser

    try:
        report_browser.chromium()
    except FileNotFoundError as error:  # .ci/run installs Debian's chromium; only a failed install lands here
        pytest.skip(f"no Chromium to look at the report with: {error}")
    run_dir, _ = tiny_pipeline
    html = (run_dir / "report.html").read_text()
    pngs, sources = embedded_images(html)
    assert len(pngs) == len(sources) == 5 and all(png.startswith(b"\x89PNG") for png in pngs)  # self-contained
    shots = [(run_dir / "report_phone.png", 390, None), (run_dir / "report_laptop.png", 1280, None)]
    seen = report_browser.look_at(run_dir / "report.html", screenshots=shots)
    assert seen["problems"] == []
    assert len(seen["images"]) == 5 and all(width > 0 for _, width in seen["images"])
    for path, width, _ in shots:
        png = path.read_bytes()
        assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == width
        assert int.from_bytes(png[20:24], "big") > 2000  # the whole page, not one screen


def test_browser_check_finds_broken_images_and_console_errors(tmp_path):
    from keras_mobilenets.app import report_browser

    try:
        report_browser.chromium()
    except FileNotFoundError as error:
        pytest.skip(f"no Chromium to look at a page with: {error}")
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body style='margin:0'><img src='missing.png' alt='missing'>"
                    "<script>console.error('boom')</script><div style='width:2000px'>wide</div></body></html>")
    seen = report_browser.look_at(page, screenshots=[(tmp_path / "shot.png", 390, 600)])
    assert seen["images"] == [("missing", 0)]
    assert sorted(seen["problems"]) == ["console error: Failed to load resource: net::ERR_FILE_NOT_FOUND",
                                        "console error: boom", "image did not load: missing",
                                        "the page is 2000 px wide on a 390 px screen"]


def small_result(model, median_ms, classes=3, wrong=0):
    """A ModelResult as a finished run records it, for a data set of `classes` classes (no run on disk)."""
    count = 30
    labels = [index % classes for index in range(count)]
    predicted = [(label + 1) % classes if index < wrong else label for index, label in enumerate(labels)]
    predictions = {"label": labels, "top_k": [[guess] for guess in predicted], "score": [0.9] * count,
                   "source_top1": labels}
    files = [report.TfliteResult(path=f"/nowhere/model_{name}.tflite", quantization=title,
                                 top1=1 - wrong / count, top5=1.0, count=count, size_bytes=size, median_ms=ms,
                                 p90_ms=ms * 1.1, partitions=1, agreement=1.0, compared_with=source,
                                 median_ms_2_threads=ms * 0.7, predictions=predictions)
             for name, title, size, ms, source in (
                 ("float32", "float32", 4_000_000, median_ms * 2, "model"),
                 ("int8", "int8 (post-training)", 1_000_000, median_ms, "model"),
                 ("qat-int8", "int8 (QAT)", 1_000_000, median_ms * 1.01, "qat_model"))]
    return report.ModelResult(model=model, run_dir="/nowhere", keras_top1=1.0, keras_top5=1.0, files=files,
                              class_names=[f"class{index}" for index in range(classes)],
                              training={"image_size": 32, "optimizer": "sgd"}, qat={"epochs": 1},
                              params=1000, macs=20000)


SETTINGS = {"dataset": "digits", "image_size": 32, "epochs": 1, "qat_epochs": 1, "batch_size": 8,
            "benchmark_runs": 5}


def test_several_models_sorted_by_latency_and_no_top5_for_few_classes(tmp_path):
    results = [small_result("slow_net", 3.0), small_result("fast_net", 1.0)]
    page = report.write_report(results, tmp_path, title="two models", settings=SETTINGS)
    markdown = (tmp_path / "report.md").read_text()
    summary = markdown_table(markdown, "model")
    assert [(row[0], float(row[5])) for row in summary] == [
        ("fast_net", 1.0), ("fast_net", 1.01), ("fast_net", 2.0), ("slow_net", 3.0), ("slow_net", 3.03),
        ("slow_net", 6.0)]
    assert "top-5" not in markdown and "top-5" not in page.read_text()  # 3 classes: top-5 says nothing
    assert "The test split is small (30 images)" in markdown
    assert "No test image is misclassified." in markdown
    pngs, sources = embedded_images(page.read_text())
    assert len(pngs) == len(sources) == 2 + 2 * 2  # 2 trade-off charts; confusion and curves per model
    assert "http" not in page.read_text()  # nothing to fetch


def test_tradeoff_chart_draws_the_pareto_front_with_its_legend(tmp_path):
    import matplotlib.image

    assert report_charts.pareto_front([(2, 0.9), (1, 0.8), (3, 0.85), (4, 0.95)]) == [(1, 0.8), (2, 0.9), (4, 0.95)]
    points = [("a", 1.0, 0.8, (0.7, 0.9)), ("b", 2.0, 0.9, (0.8, 0.95)), ("c", 3.0, 0.85, (0.75, 0.9))]
    figure = report_charts.tradeoff_figure(points, xlabel="ms")
    axis, = figure.axes
    legend = {text.get_text(): handle for text, handle in zip(axis.get_legend().get_texts(),
                                                              axis.get_legend().legend_handles)}
    assert set(legend) == {"a", "b", "c", "Pareto front"}
    assert legend["Pareto front"].get_linestyle() == "--" and legend["Pareto front"].get_linewidth() > 0
    front, = [line for line in axis.get_lines() if line.get_label() == "Pareto front"]
    assert list(front.get_xdata()[:2]) == [1.0, 2.0] and front.get_xdata()[-1] > 3.0  # on past the slowest
    path = report_charts.tradeoff(points, tmp_path / "chart.png", xlabel="ms")
    assert matplotlib.image.imread(path).shape[0] > 100


def test_per_class_against_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 4, 200))
    names = ["cat", "dog", "fox", "owl"]
    rows = report.per_class(labels.tolist(), predicted.tolist(), names)
    expected = classification_report(labels, predicted, target_names=names, output_dict=True)
    for row in rows:
        figures = expected["macro avg" if row["class"] == "macro average" else row["class"]]
        assert row["images"] == figures["support"]
        assert row["precision"] == pytest.approx(figures["precision"])
        assert row["recall"] == pytest.approx(figures["recall"])
        assert row["f1"] == pytest.approx(figures["f1-score"])
    assert rows[-1]["correct"] == int(np.sum(labels == predicted))
    low, high = report.interval(0.9, 100)
    wider_low, wider_high = report.interval(0.9, 25)
    assert wider_low < low < 0.9 < high < wider_high
