"""A fix for python-xlib's RandR errors, applied before any connection is opened.

python-xlib 0.32-0.33 registers RandR's three error classes at the raw codes 0, 1 and 2 instead of at the
server's first RandR error code plus those (`Xlib/ext/randr.py` `init`; python-xlib issues #241 and #259, open).
Codes 1 and 2 are the core BadRequest and BadValue, and RandR's classes are plain Exceptions with no
`sequence_number`. So on every connection to a server with RandR (Xvfb, Xorg), an ordinary BadValue (a
`GetProperty` whose offset passed a title that Chromium changed between python-xlib's two reads of it) raises
AttributeError inside python-xlib's reader, halfway through a response. That reader never clears its
`recv_active` flag, and the connection's next request waits forever on a spinning core: the hang of
`tests/test_sink.py`'s Chromium test in stop 51 (in `portable._alive`'s sync) and the AttributeError of its x11
variant in a later run. Every Python X client in the process is affected (ours, pywinctl's and ewmhlib's,
pynput's), so the fix wraps RandR's `init`, which `Xlib.display.Display` looks up at each connection: after it
runs, the core classes are back at their codes and RandR's own errors parse as plain `XError`s.
"""
from __future__ import annotations


def fix_randr_errors() -> bool:
    """Wrap python-xlib's RandR init once per process; False where python-xlib is not installed."""
    try:
        from Xlib import error
        from Xlib.ext import randr
    except ImportError:  # not on X11 (Windows, macOS): nothing to fix
        return False
    if getattr(randr.init, "hakisa_fixed", False):
        return True
    plain = randr.init
    misplaced = {randr.BadRROutput: randr.BadRROutputError, randr.BadRRCrtc: randr.BadRRCrtcError,
                 randr.BadRRMode: randr.BadRRModeError}

    def init(disp, info):
        plain(disp, info)
        table = disp.display.error_classes
        for code, cls in misplaced.items():
            if table.get(code) is cls:  # only what RandR put there (a fixed python-xlib leaves these alone)
                if code in error.xerror_class:
                    table[code] = error.xerror_class[code]
                else:
                    del table[code]

    init.hakisa_fixed = True
    randr.init = init
    return True
