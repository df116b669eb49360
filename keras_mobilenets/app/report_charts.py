"""The report's figures as PNG files (matplotlib, drawn off-screen): curves, trade-offs, confusion, mistakes.

Each function draws one figure from figures the stages recorded and returns
the PNG's path; the report embeds them in report.html and links them from
report.md.
"""
from keras_mobilenets.files import save_atomically

MARKERS = "osD^v<>p"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: draw into files
    import matplotlib.pyplot as plt

    return plt


def training_curves(model, float_history, qat_history, path, *, qat_learning_rate=None):
    """Loss, accuracy and learning rate per epoch; the QAT epochs continue after the float ones, dashed.

    QAT's history has no learning rate (it is constant): `qat_learning_rate` draws it.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    loss_axis, accuracy_axis, rate_axis = axes
    offset = 0
    for rows, style, phase in ((float_history, "-", "float"), (qat_history, "--", "QAT")):
        if not rows:
            continue
        epochs = [offset + index + 1 for index in range(len(rows))]
        offset += len(rows)
        for axis, key in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
            for prefix, alpha, split in (("", 0.5, "train"), ("val_", 1.0, "validation")):
                if prefix + key in rows[0]:
                    axis.plot(epochs, [float(row[prefix + key]) for row in rows], style, marker=".", alpha=alpha,
                              label=f"{phase} {split}")
        rates = [float(row["learning_rate"]) for row in rows] if "learning_rate" in rows[0] else None
        if rates is None and phase == "QAT" and qat_learning_rate is not None:
            rates = [qat_learning_rate] * len(rows)
        if rates is not None:
            rate_axis.plot(epochs, rates, style, marker=".", label=f"{phase} (at epoch end)")
    for axis, title in zip(axes, ("loss", "accuracy", "learning rate")):
        axis.set_xlabel("epoch")
        axis.set_title(f"{model}: {title}")
        if axis.get_lines():
            axis.legend(fontsize=7)
    rate_axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    return _save(figure, path)


def pareto_front(points):
    """Points (cost, accuracy) not beaten by a cheaper, at least as accurate one, cheapest first."""
    front, best = [], -1.0
    for cost, accuracy in sorted(points):
        if accuracy > best:
            front.append((cost, accuracy))
            best = accuracy
    return front


def tradeoff(points, path, *, xlabel):
    """Accuracy (with its 95% interval) against a cost for every file, and the Pareto front."""
    return _save(tradeoff_figure(points, xlabel=xlabel), path)


def tradeoff_figure(points, *, xlabel):
    """`points`: (label, cost, accuracy, (low, high)). The front is drawn as a
    staircase (the best accuracy reachable at each cost) that runs on to the
    right edge, so it shows as a line even when one file beats all others.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.8))
    for (label, cost, accuracy, (low, high)), marker in zip(points, MARKERS * len(points)):
        axis.errorbar(cost, accuracy * 100, yerr=[[(accuracy - low) * 100], [(high - accuracy) * 100]],
                      fmt=marker, capsize=3, label=label)
    front = pareto_front([(cost, accuracy) for _, cost, accuracy, _ in points])
    right = max(cost for _, cost, _, _ in points) * 1.08
    costs = [cost for cost, _ in front] + [right]
    accuracies = [accuracy * 100 for _, accuracy in front]
    axis.step(costs, accuracies + accuracies[-1:], where="post", color="black", linestyle="--", linewidth=1.2,
              label="Pareto front")
    axis.set_xlim(left=0, right=right)
    axis.set_xlabel(xlabel)
    axis.set_ylabel("test top-1 (%), 95% interval")
    axis.legend(fontsize=7, loc="best")
    return figure


def confusion(labels, predicted, class_names, path, *, title):
    """Counts of true class (rows) against predicted class, with a colour scale."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    size = min(4 + 0.35 * len(class_names), 30)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    ConfusionMatrixDisplay.from_predictions(
        labels, predicted, labels=list(range(len(class_names))), display_labels=class_names, ax=axis,
        cmap="Blues", colorbar=True, include_values=len(class_names) <= 30, xticks_rotation="vertical")
    axis.set_title(title)
    return _save(figure, path)


def mistakes(images, captions, path, *, columns=6):
    """A grid of misclassified images, each with its caption (true and predicted classes)."""
    plt = _pyplot()
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 2.3 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions):
        axis.imshow(image.astype("uint8"), interpolation="nearest")
        axis.set_title(caption, fontsize=8)
    return _save(figure, path)


def _save(figure, path):
    plt = _pyplot()
    figure.tight_layout()
    save_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100))
    plt.close(figure)
    return path
