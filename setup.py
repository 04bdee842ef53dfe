"""Builds the odma Python package (python/odma) with its extension odma._odma.

Offline, with Debian's python3-setuptools, python3-pybind11 and python3-numpy:

    python3 -m pip install --no-build-isolation .

The extension is the C API (capi/src/*.cpp) and its pybind11 binding (python/src/odma_module.cpp)
compiled together with -std=c++20 -O2; odma itself is header-only (include/). CMake builds the
same package (python/CMakeLists.txt); this file is for pip.
"""

import glob
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.extension import Extension

HERE = os.path.dirname(os.path.abspath(__file__))


def _pybind11_include():
    import pybind11

    return pybind11.get_include()


class _BuildExt(build_ext):
    def build_extensions(self):
        for ext in self.extensions:
            ext.include_dirs.append(_pybind11_include())
        super().build_extensions()


capi_sources = sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "capi", "src", "*.cpp")))

setup(
    name="odma",
    version="0.1.0",
    description="On-demand, contiguous KV-cache memory allocation for LLM serving",
    license="MIT",
    packages=["odma"],
    package_dir={"": "python"},
    python_requires=">=3.9",
    install_requires=["numpy"],
    ext_modules=[
        Extension(
            "odma._odma",
            sources=capi_sources + ["python/src/odma_module.cpp"],
            include_dirs=["include", "capi/include", "capi/src"],
            language="c++",
            extra_compile_args=["-std=c++20", "-O2", "-fvisibility=hidden"],
        )
    ],
    cmdclass={"build_ext": _BuildExt},
    zip_safe=False,
)
