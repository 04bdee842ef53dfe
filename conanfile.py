"""Conan 2 recipe for odma, a header-only C++20 KV-cache allocator.

    conan create . --build=missing          # package it and run test_package/
    conan install --requires=odma/0.1.0     # use it (CMakeDeps: find_package(odma), odma::odma)
"""
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy
from conan.tools.layout import basic_layout


class OdmaConan(ConanFile):
    name = "odma"
    version = "0.1.0"
    description = ("On-demand, contiguous KV-cache memory allocation for LLM serving "
                   "(header-only C++20)")
    license = "MIT"
    homepage = "https://github.com/odma-project/odma"
    url = "https://github.com/odma-project/odma"
    topics = ("llm", "kv-cache", "allocator", "memory", "header-only", "cuda", "mlu")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "include/*", "LICENSE"
    no_copy_source = True

    def layout(self):
        basic_layout(self, src_folder=".")

    def package_id(self):
        # One package for every configuration: nothing is compiled.
        self.info.clear()

    def validate(self):
        check_min_cppstd(self, 20)

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "odma")
        self.cpp_info.set_property("cmake_target_name", "odma::odma")
        self.cpp_info.set_property("pkg_config_name", "odma")
