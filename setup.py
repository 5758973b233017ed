"""Build the Cython bindings over csrc/ (the rest of the metadata is in pyproject.toml).

Our own C is compiled as static libraries with -Wall -Wextra -Werror, then linked into thin
Cython extensions (whose generated code is not held to -Werror).
"""

import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build import build  # noqa: F401  (loads setuptools' distutils)

from distutils.command.build_scripts import build_scripts  # isort: skip

CFLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-D_GNU_SOURCE"]
CYTHON_CFLAGS = ["-Wno-unused-function", "-Wno-unused-parameter"]


def csources(pred):
    return sorted(p for p in glob.glob("csrc/*.c") if pred(os.path.basename(p)))


# C files by the extension they belong to (by name prefix); the rest is the launch path.
OWN_PREFIX = {"extract": "extract", "seccomp": "seccomp_compile", "cgroup": "cgroup_bpf"}


def part_of(name):
    return next((mod for mod, pre in OWN_PREFIX.items() if name.startswith(pre)), "launch")


# (module, static library, its C sources, system libraries)
PARTS = [
    ("launch", "sjlaunch", csources(lambda n: part_of(n) == "launch"), []),
    ("extract", "sjextract", csources(lambda n: part_of(n) == "extract"), ["z", "zstd", "isal"]),
    ("seccomp", "sjseccomp", csources(lambda n: part_of(n) == "seccomp"), ["seccomp"]),
    ("cgroup", "sjcgroup", csources(lambda n: part_of(n) == "cgroup"), []),
]


class BuildScripts(build_scripts):
    """Give bin/sangja the interpreter's absolute path *with* `-IS` (one argument: the
    kernel passes everything after the interpreter as a single one).

    pip rewrites a `#!python` line to the bare interpreter and drops flags; without -S,
    site.py's scan of site-packages adds ~30 ms to every runtime call here.
    """

    def run(self):
        super().run()
        for name in os.listdir(self.build_dir):
            path = os.path.join(self.build_dir, name)
            with open(path) as f:
                lines = f.read().split("\n", 1)
            if lines[0].startswith("#!") and "python" in lines[0]:
                with open(path, "w") as f:
                    f.write(f"#!{sys.executable} -IS\n{lines[1]}")


setup(
    cmdclass={"build_scripts": BuildScripts},
    libraries=[
        (lib, {"sources": srcs, "include_dirs": ["csrc"], "cflags": CFLAGS})
        for _, lib, srcs, _ in PARTS
    ],
    ext_modules=cythonize(
        [
            Extension(
                f"sangja._native.{mod}",
                sources=[f"src/sangja/_native/{mod}.pyx"],
                include_dirs=["csrc"],
                extra_compile_args=CYTHON_CFLAGS,
                libraries=[lib, *syslibs],
                # relink when our C changes (the static library is not a tracked input)
                depends=[*srcs, *glob.glob("csrc/*.h")],
            )
            for mod, lib, srcs, syslibs in PARTS
        ],
        language_level=3,
    ),
    scripts=["scripts/sangja"],
)
