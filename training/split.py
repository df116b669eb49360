"""Seeded, stratified train / validation / test split of labelled examples."""
import numpy as np


def split_indices(labels, seed, fractions):
    """Stratified, seeded split of example indices into train / validation / test."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * fractions["test"]))
        n_validation = int(round(len(members) * fractions["validation"]))
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test:n_test + n_validation])
        parts["train"].append(members[n_test + n_validation:])
    return {name: rng.permutation(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
            for name, chunks in parts.items()}
