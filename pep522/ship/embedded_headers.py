"""The series' headers in the forms Yocto and Buildroot require.

Both take `git format-patch` files, but their QA wants trailers our DEP-3
form does not have: OpenEmbedded-Core's patch-status check wants
`Upstream-Status:` (meta/lib/oe/qa.py), Buildroot's check-package wants
`Upstream:` (a URL or `N/A <reason>`); both want `Signed-off-by:`.  They
are made here from each patch's own fields, never written by hand: the
DEP-3 `Forwarded:` (and `Applied-Upstream:`, if a patch has one) says
where the change stands upstream, the `From:` line who signs it off.  The
new trailers go after the patch's own, before the `---` line that ends
the message; the rest of the file is kept byte for byte.
"""

import dataclasses
import re

from pep522.errors import Error

# PEP 522 was rejected upstream in favour of PEP 524: the changes that
# make it are downstream-only, and say so in every form.
PEP_REASON = ("downstream PEP 522, rejected upstream in favour of PEP 524 "
              "(https://peps.python.org/pep-0522/)")
NOT_SENT = "an upstream bug fix, not sent upstream yet"

FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*): ?(.*)$")
URL = re.compile(r"^https?://\S+$")


@dataclasses.dataclass
class Header:
    """What a patch file says about itself."""

    name: str
    author: str          # the From: line's value
    subject: str
    fields: dict         # the message's trailers: {field: value}
    end: int             # index of the `---` line that ends the message

    def field(self, key):
        return self.fields.get(key.lower())


def parse(name, lines):
    """The Header of the patch *name* whose text is *lines*."""
    author = subject = None
    end = None
    for i, line in enumerate(lines):
        if line == "---":
            end = i
            break
        if author is None and line.startswith("From: "):
            author = line[len("From: "):]
        elif subject is None and line.startswith("Subject: "):
            subject = line[len("Subject: "):]
    if author is None or end is None:
        raise Error(f"{name}: not a `git format-patch` file (no From: line "
                    "or no `---` line after the message)",
                    hint="regenerate the series with `make export`")
    # The trailers: the last paragraph of the message.
    fields, i = {}, end - 1
    while i >= 0 and lines[i].strip():
        match = FIELD.match(lines[i])
        if match:
            fields.setdefault(match.group(1).lower(), match.group(2).strip())
        i -= 1
    return Header(name, author, subject or "", fields, end)


def status(header):
    """(Yocto Upstream-Status value, Buildroot Upstream value)."""
    applied = header.field("Applied-Upstream")
    forwarded = header.field("Forwarded")
    if applied:
        where = applied if URL.match(applied) else None
        return (f"Backport [{applied}]",
                where or f"N/A backported from upstream {applied}")
    if forwarded is None:
        raise Error(f"{header.name}: no DEP-3 `Forwarded:` field, so where "
                    "the change stands upstream is unknown",
                    hint="add `Forwarded: not-needed`, `no` or the URL it "
                         "was sent to to the commit message in the tree "
                         "(`make checkout`), then `make export`")
    value = forwarded.lower()
    if value == "not-needed":
        return f"Inappropriate [{PEP_REASON}]", f"N/A {PEP_REASON}"
    if value == "no":
        return "Pending", f"N/A {NOT_SENT}"
    if URL.match(forwarded):
        return f"Submitted [{forwarded}]", forwarded
    raise Error(f"{header.name}: `Forwarded: {forwarded}` is neither "
                "not-needed, no, nor a URL",
                hint="say where the change was sent (a URL), `no` or "
                     "`not-needed` in the commit message, then `make export`")


def with_trailers(text, name, tool):
    """The patch *text* with the trailers *tool* ("yocto" or
    "buildroot") requires; an error if its header cannot give them."""
    lines = text.split("\n")
    header = parse(name, lines)
    yocto, buildroot = status(header)
    new = {"yocto": [f"Upstream-Status: {yocto}"],
           "buildroot": [f"Upstream: {buildroot}"]}[tool]
    sob = f"Signed-off-by: {header.author}"
    if sob not in lines[:header.end]:
        new.append(sob)
    return "\n".join(lines[:header.end] + new + lines[header.end:])
