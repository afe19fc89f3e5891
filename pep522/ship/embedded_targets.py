"""The embedded targets of embedded.toml: which branch ships which release."""

import dataclasses
import tomllib

from pep522 import config
from pep522.errors import Error

TABLE = config.ROOT / "embedded.toml"
TOOLS = ("yocto", "buildroot")


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    tool: str
    branch: str
    version: str
    layerseries: str = None
    bitbake: str = None
    own_patches: int = None


def load(path=TABLE):
    """[Target] of the table at *path*, in its order."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    targets = []
    for name, block in data.get("targets", {}).items():
        tool = block.get("tool")
        if tool not in TOOLS:
            raise Error(f"{path}: target {name!r} has tool {tool!r}; "
                        f"expected one of {', '.join(TOOLS)}")
        needed = {"yocto": ["layerseries", "bitbake"],
                  "buildroot": ["own-patches"]}[tool] + ["branch", "version"]
        missing = [key for key in needed if key not in block]
        if missing:
            raise Error(f"{path}: target {name!r} lacks "
                        f"{', '.join(missing)}")
        targets.append(Target(name, tool, block["branch"], block["version"],
                              block.get("layerseries"), block.get("bitbake"),
                              block.get("own-patches")))
    return targets


def shipping(targets, tool, version):
    """The targets of *tool* that ship *version*; an error if none."""
    found = [t for t in targets if t.tool == tool and t.version == version]
    if not found:
        shipped = sorted({t.version for t in targets if t.tool == tool})
        raise Error(f"no {tool} target of embedded.toml ships CPython "
                    f"{version}",
                    hint=f"its {tool} targets ship "
                         f"{', '.join(shipped) or 'nothing'} (make {tool} "
                         "VERSION=<one of them>); for another release, add "
                         "the branch that ships it to embedded.toml and "
                         "check it with `make embedded-check`")
    return found


def has_series(release):
    """Does *release* (None: not pinned) have its series in patches/?"""
    return (release is not None
            and (release.series_dir / "series").is_file())
