"""Training stage: data sources, the fit loop and quantization-aware training."""
