"""XML documents whose DOCTYPE names a file on the server, in every encoding libxml2 reads, and
the files it names: one that exists, one that does not, a FIFO (opening it for reading blocks
until a writer comes: the proof that nothing opened it) and /dev/zero (endless)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from dmp_xds.xds import vocabulary as v

# A comment longer than the 4 kB a byte sniffer would look at, before the DOCTYPE.
LONG_COMMENT = "<!--" + "padding " * 600 + "-->"

# (name, Python codec, byte order mark, encoding declared): UTF-32 too, libxml2 reads it.
ENCODINGS = [
    ("utf-8", "utf-8", b"", "UTF-8"),
    ("utf-8-bom", "utf-8", b"\xef\xbb\xbf", "UTF-8"),
    ("utf-16-le", "utf-16-le", b"\xff\xfe", "UTF-16"),
    ("utf-16-be", "utf-16-be", b"\xfe\xff", "UTF-16"),
    ("utf-32-le", "utf-32-le", b"\xff\xfe\x00\x00", "UTF-32"),
    ("utf-32-be", "utf-32-be", b"\x00\x00\xfe\xff", "UTF-32"),
]

# Ways a DOCTYPE names a file: {url} is replaced by the file's URL or path.
DOCTYPES = {
    "system": '<!DOCTYPE s:Envelope SYSTEM "{url}">',
    "public": '<!DOCTYPE s:Envelope PUBLIC "-//dmp-xds//test//EN" "{url}">',
    "parameter-entity": '<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "{url}"> %p;]>',
    "external-entity": '<!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "{url}">]>',
}

ENVELOPE = (
    f'<s:Envelope xmlns:s="{v.NS_SOAP12}" xmlns:a="{v.NS_WSA}"><s:Header><a:Action>{v.ACTION_ITI18}'
    f"</a:Action></s:Header><s:Body><x>&x;</x></s:Body></s:Envelope>"
)


def hostile_document(url: str, encoding: str = "utf-8", doctype: str = "system") -> bytes:
    """A SOAP envelope whose DOCTYPE (after a comment of more than 4 kB) names `url`."""
    _, codec, bom, declared = next(e for e in ENCODINGS if e[0] == encoding)
    body = ENVELOPE if doctype == "external-entity" else ENVELOPE.replace("&x;", "")
    text = f'<?xml version="1.0" encoding="{declared}"?>{LONG_COMMENT}{DOCTYPES[doctype].format(url=url)}{body}'
    return bom + text.encode(codec)


@dataclass(frozen=True)
class Targets:
    existing: Path
    missing: Path
    fifo: Path
    zero: Path = Path("/dev/zero")

    def all(self) -> dict[str, Path]:
        return {"existing": self.existing, "missing": self.missing, "fifo": self.fifo, "zero": self.zero}


def make_targets(directory: Path) -> Targets:
    existing = directory / "passwd"
    existing.write_text("root:x:0:0:root:/root:/bin/bash\n")
    fifo = directory / "fifo"
    os.mkfifo(fifo)
    return Targets(existing, directory / "no-such-file", fifo)


def release_fifo(fifo: Path, seconds: float = 2.0) -> bool:
    """Unblock whoever waits to read `fifo` (opening a writer and closing it: the reader sees the
    end of the file). True if someone was waiting. Tries for `seconds` at most."""
    deadline = time.monotonic() + seconds
    released = False
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader has it open
            if released:
                return True
            time.sleep(0.05)
            continue
        os.close(fd)
        released = True
        time.sleep(0.05)
    return released
