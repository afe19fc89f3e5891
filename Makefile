# A thin front door to the tool: every target is one `python3 -m pep522`
# subcommand.  Options, all optional:
#   VERSION=3.13.15         another pinned upstream release (upstream.toml)
#   TARBALL=path            use this release tarball (its SHA-256 is checked)
#   CPYTHON_GIT=path-or-url a CPython git repository to export releases
#                           from when no tarball is at hand (the tag must be
#                           the commit upstream.toml pins; passed on to the
#                           tool through the environment)
#   CONFIGURE_ARGS="..."    extra options for CPython's configure
#   PREFIX=/opt/python      installation prefix for `make install`
#   STOCK=1                 the release without our series (build/<v>-stock)
#   VARIANT=debug           a build variant of variants.toml (build/<v>-<variant>)
#   OE_CORE_GIT=, BUILDROOT_GIT=, BITBAKE_GIT=  (embedded-check) their git
#                           repositories, paths or URLs, like CPYTHON_GIT
#   ARCH=aarch64            cross-build for an architecture of arches.toml
#                           (build/<v>[-stock]-<arch>); with boot-test, boot it

PYTHON3 ?= python3
TOOL = $(PYTHON3) -m pep522
RELEASE = $(if $(VERSION),--version=$(VERSION)) \
	$(if $(TARBALL),--tarball=$(TARBALL))
TARGET = $(RELEASE) $(if $(STOCK),--stock) \
	$(if $(VARIANT),--variant=$(VARIANT))
BUILD_OPTS = $(TARGET) --configure-args="$(CONFIGURE_ARGS)" \
	$(if $(PREFIX),--prefix=$(PREFIX))

.PHONY: all build obtain tree checkout export port install test test-full \
	boot-test boot-libtest bench impact debian debian-packages boot-systemd \
	docs dist test-variants yocto buildroot embedded-check

all: build

build:
	@$(TOOL) $(if $(ARCH),cross --arch=$(ARCH) $(TARGET),build $(BUILD_OPTS))

install:
	@$(TOOL) install $(BUILD_OPTS)

test:
	@$(TOOL) test $(BUILD_OPTS)

test-full:
	@$(TOOL) test-full $(BUILD_OPTS)

obtain tree checkout export:
	@$(TOOL) $@ $(TARGET)

# Every variant of variants.toml (or VARIANT=name), patched and stock:
# build, then its checks (see docs/variants.md; not part of `test`).
test-variants:
	@$(TOOL) test-variants $(RELEASE) $(VARIANT)

# The series of FROM (default: the default release) onto VERSION with a
# three-way merge; SINCE=<git revision> to update an earlier port with what
# changed in the series since; CONTINUE=1 after resolving a conflict
# (docs/releases.md).
port:
	@$(TOOL) port $(RELEASE) $(if $(FROM),--from=$(FROM)) \
		$(if $(SINCE),--since=$(SINCE)) $(if $(CONTINUE),--continue)

# The early-boot check in QEMU (docs/early-boot.md); BOOT_ARGS="--quick"
# for a shorter run, ARCH=aarch64 for another architecture (cross-built).
BOOT = $(TOOL) boot $(if $(VERSION),--version=$(VERSION)) \
	$(if $(ARCH),--arch=$(ARCH)) $(BOOT_ARGS)
boot-test:
	@$(BOOT)

# CPython's PEP 522 test classes and rngsim inside the guest.
boot-libtest:
	@$(BOOT) --libtest

# Patched against stock, side by side, with pyperf (not part of `test`).
bench:
	@$(TOOL) bench $(RELEASE)

# Which of the top N PyPI packages raise or wait (docs/impact.md; not
# part of `test`).  IMPACT_ARGS="requests -r FILE" for other packages.
impact:
	@$(TOOL) impact $(RELEASE) $(or $(IMPACT_ARGS),--top 200 --probes)

# For packagers: the series on Debian's package, the docs, a tarball.
debian:
	@$(TOOL) debian $(if $(VERSION),--version=$(VERSION))

# Debian's own python3.13 packages built with the series in a chroot,
# installed and tested there (not part of `test`; 26 min of compiling on 2
# idle cores, about 1h20m in all at load 12-15:
# docs/packagers.md has the table).
debian-packages:
	@$(TOOL) debian-packages $(if $(VERSION),--version=$(VERSION))

# Debian with systemd booting those packages in QEMU: the PEP's
# ExecStartPre recipe, patched and stock (a few minutes; not in `test`).
boot-systemd:
	@$(TOOL) boot-systemd $(if $(VERSION),--version=$(VERSION))

docs dist:
	@$(TOOL) $@ $(RELEASE)

# For embedded builders (docs/embedded.md): the series as an OpenEmbedded
# layer (build/yocto/<version>/meta-pep522) and as a Buildroot
# BR2_GLOBAL_PATCH_DIR (build/buildroot/<version>); embedded-check applies
# them on each target of embedded.toml with their own patches and tools
# (OE_CORE_GIT=, BUILDROOT_GIT=, BITBAKE_GIT=; EMBEDDED_TARGET="oe-core
# master" for one target; not part of `test`).
yocto buildroot:
	@$(TOOL) $@ $(if $(VERSION),--version=$(VERSION))

embedded-check:
	@$(TOOL) embedded-check $(if $(EMBEDDED_TARGET),--target="$(EMBEDDED_TARGET)")
