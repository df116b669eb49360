"""The application layer: the `keras-mobilenets` command, the pipeline and its report.

Not model code: it calls the stages' library functions (models, training,
tflite) and is never called by them.
"""
