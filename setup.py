"""The two C fast paths of the hot path (issue #25, part 2): ``schemas._flat`` (the flat
records' Avro bodies) and ``streams._speedups`` (murmur2, the common ID number). Everything
else is in pyproject.toml.

Both are optional: where they cannot be compiled (no C compiler, no Python headers) the
install goes on and the Python they shadow runs alone, with the same results; `zhucan bench`
says which ran, and ``ZHUCAN_NATIVE=0`` chooses the Python where they are built.
"""

from setuptools import Extension, setup

ARGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]

setup(ext_modules=[  # schemas/_civil.h, _avro_in.h and _avro_out.h: the calendar, Avro reading and writing both use
    Extension("schemas._flat", ["schemas/_flat.c"], depends=["schemas/_avro_in.h", "schemas/_avro_out.h", "schemas/_civil.h"], optional=True,
              extra_compile_args=ARGS),
    Extension("streams._speedups", ["streams/_speedups.c"], include_dirs=["schemas"],
              depends=["schemas/_avro_in.h", "schemas/_avro_out.h", "schemas/_civil.h"], optional=True, extra_compile_args=ARGS),
])
