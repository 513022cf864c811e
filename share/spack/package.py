# Copyright vine authors.  SPDX-License-Identifier: see the project's README.
#
# Spack package recipe for vine.  Use it from a local repository:
#
#   spack repo create myrepo && mkdir -p myrepo/packages/vine
#   cp share/spack/package.py myrepo/packages/vine/ && spack repo add myrepo
#
# vine has no public home yet, so the recipe names no repository: tell Spack
# where your site keeps it in packages.yaml (Spack sets package_attributes
# on the recipe's class), then install:
#
#   packages:
#     vine:
#       package_attributes:
#         git: https://git.your-site.example/hpc/vine.git
#         homepage: https://git.your-site.example/hpc/vine
#
#   spack install vine@main
#
# or build a checkout you have: spack develop --path /path/to/vine vine@main
#
# The Makefile links what `pkg-config --libs libarchive libssh2 zlib sqlite3
# libcrypto jansson libdeflate` names; each is a dependency below.

from spack.package import *


class Vine(MakefilePackage):
    """Pack a Python environment into one relocatable archive, make it ready
    on every node's local storage, spread it from node to node, and run task
    lists there (TaskVine-style environment distribution for HPC)."""

    # No homepage and no git here: vine has no public home yet, and a made-up
    # address would send Spack (and users) somewhere wrong.  Both are
    # optional attributes of a Spack package (None by default); a site sets
    # them with package_attributes (see the top of this file).  Without git,
    # fetching vine@main fails with Spack's own message, naming the package.

    maintainers("vine-project")

    version("main", branch="main")

    variant("completion", default=True, description="Install bash completion for the programs")
    variant("parsl", default=False, description="Depend on Parsl for the executor in share/vine/python")
    variant("docs", default=True, description="Install the man pages and share/vine/doc")

    depends_on("c", type="build")
    depends_on("gmake", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("libarchive")
    depends_on("libssh2")
    depends_on("zlib-api")
    depends_on("sqlite@3.24:")
    depends_on("openssl")
    depends_on("jansson")
    depends_on("libdeflate")

    depends_on("python@3.8:", type="run", when="+parsl")
    depends_on("py-parsl", type="run", when="+parsl")

    @property
    def build_targets(self):
        return ["all"]

    def install(self, spec, prefix):
        make("install", "PREFIX={0}".format(prefix))
        if spec.satisfies("~completion"):
            remove_linked_tree(join_path(prefix.share, "bash-completion"))
        if spec.satisfies("~docs"):
            remove_linked_tree(prefix.share.man)
            remove_linked_tree(join_path(prefix.share, "vine", "doc"))

    def setup_run_environment(self, env):
        if self.spec.satisfies("+parsl"):
            env.prepend_path("PYTHONPATH", join_path(self.prefix.share, "vine", "python"))

    programs = [
        "vine-pack", "vine-seed", "vine-spread", "vine-submit", "vine-worker",
        "vine-collect", "vine-status", "vine-state", "vine-cache", "vine-cancel",
    ]

    def test_programs(self):
        """every installed program runs and prints its usage with -h"""
        for name in self.programs:
            with test_part(self, "test_programs_{0}".format(name),
                           purpose="{0} -h prints usage".format(name)):
                exe = which(join_path(self.prefix.bin, name))
                out = exe("-h", output=str.split, error=str.split)
                assert "usage" in out, "{0} -h printed no usage".format(name)

    def test_pack_seed(self):
        """pack a small tree, seed it into a cache, run a command inside"""
        tree = "tree"  # in the test stage directory
        mkdirp(join_path(tree, "bin"))
        with open(join_path(tree, "bin", "hello"), "w") as f:
            f.write("#!/bin/sh\necho hello from vine\n")
        set_executable(join_path(tree, "bin", "hello"))
        which(join_path(self.prefix.bin, "vine-pack"))("-q", "-o", "t.tgz", tree)
        out = which(join_path(self.prefix.bin, "vine-seed"))(
            "-q", "-c", "cache", "t.tgz", "--", "hello", output=str.split, error=str.split)
        assert "hello from vine" in out
