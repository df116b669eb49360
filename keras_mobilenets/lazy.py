"""Public names imported on first use (PEP 562), for the package and its stage packages.

`import keras_mobilenets` and `keras-mobilenets --help` must not start
TensorFlow, so a package lists its public names with the module that defines
each, and the module is imported when a name is first looked up.
"""
import importlib


def exports(package, table):
    """(__all__, __getattr__, __dir__) for `package` from {public name: "module" or "module:attribute"}.

    A name whose module is None is a submodule of the package (e.g. `data`).
    """

    def __getattr__(name):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = table[name]
        if where is None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            module, _, attribute = where.partition(":")
            value = getattr(importlib.import_module(module), attribute or name)
        globals_of_package = vars(importlib.import_module(package))
        globals_of_package[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(table))

    return sorted(table), __getattr__, __dir__
