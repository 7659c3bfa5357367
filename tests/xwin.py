"""A tiny real X11 client window for tests (python-xlib, no toolkit).

    python tests/xwin.py --title "xwin A" --x 100 --y 80 --width 640 --height 360 --log events.txt

It draws known content: a background of colour BG and four coloured rectangles (RECTS, in window
pixels), sets its title (WM_NAME and _NET_WM_NAME), prints "READY <window id>" on stdout once it is
mapped and drawn, and appends every KeyPress / KeyRelease / ButtonPress / ButtonRelease / MotionNotify /
FocusIn / FocusOut it receives to the log file, one line each ("KeyPress 44 j", "KeyPress 113 Left",
"KeyPress 65 space": keycode, then the X keysym name). It exits on SIGTERM or
when its stdin closes. Events are what the X server delivered to *this* window: the tests read them to
prove that input arrived (or did not).
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import sys

from Xlib import XK, X, Xatom, Xutil, display

BG = (40, 40, 40)  # RGB
# (left, top, width, height, (r, g, b)) in window pixels; sized for windows of at least 320x180
RECTS = [
    (20, 20, 100, 60, (255, 0, 0)),
    (200, 20, 100, 60, (0, 255, 0)),
    (20, 100, 100, 60, (0, 0, 255)),
    (200, 100, 100, 60, (255, 255, 0)),
]
MASK = (X.ExposureMask | X.KeyPressMask | X.KeyReleaseMask | X.ButtonPressMask | X.ButtonReleaseMask
        | X.PointerMotionMask | X.FocusChangeMask | X.StructureNotifyMask)


KEYSYM_NAMES = {v: k[3:] for k, v in vars(XK).items() if k.startswith("XK_")}  # 0xff51 -> "Left"


def pixel(rgb: tuple[int, int, int]) -> int:
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]  # Xvfb's default visual is 24-bit TrueColor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--title", default="xwin")
    ap.add_argument("--x", type=int, default=100)
    ap.add_argument("--y", type=int, default=80)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--log", default=None, help="file to append received events to")
    args = ap.parse_args()

    dpy = display.Display()
    screen = dpy.screen()
    win = screen.root.create_window(args.x, args.y, args.width, args.height, 0, screen.root_depth,
                                    X.InputOutput, X.CopyFromParent, background_pixel=pixel(BG),
                                    event_mask=MASK, override_redirect=False)
    win.set_wm_name(args.title)
    # "the user asked for this place and size": a window manager (the portable backend's openbox) keeps them
    win.set_wm_normal_hints(flags=Xutil.USPosition | Xutil.USSize, x=args.x, y=args.y, width=args.width,
                            height=args.height)
    win.change_property(dpy.intern_atom("_NET_WM_NAME"), dpy.intern_atom("UTF8_STRING"), 8, args.title.encode())
    win.change_property(dpy.intern_atom("WM_CLASS"), Xatom.STRING, 8, b"xwin\0xwin\0")
    gcs = [(r, win.create_gc(foreground=pixel(r[4]))) for r in RECTS]
    win.map()

    def draw():
        win.clear_area(0, 0, args.width, args.height)
        for (x, y, w, h, _), gc in gcs:
            win.fill_rectangle(gc, x, y, w, h)
        dpy.sync()

    log = open(args.log, "a", buffering=1) if args.log else None  # line-buffered: tests read it live

    def record(line: str) -> None:
        if log:
            log.write(line + "\n")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ready = False
    while True:
        while dpy.pending_events():
            ev = dpy.next_event()
            if ev.type == X.Expose and ev.count == 0:
                draw()
                if not ready:  # mapped and drawn: captures from now on see RECTS
                    ready = True
                    print(f"READY {win.id}", flush=True)
            elif ev.type in (X.KeyPress, X.KeyRelease):
                name = KEYSYM_NAMES.get(dpy.keycode_to_keysym(ev.detail, 0), "?")
                record(f"{'KeyPress' if ev.type == X.KeyPress else 'KeyRelease'} {ev.detail} {name}")
            elif ev.type in (X.ButtonPress, X.ButtonRelease):
                kind = "ButtonPress" if ev.type == X.ButtonPress else "ButtonRelease"
                record(f"{kind} {ev.detail} {ev.event_x} {ev.event_y}")
            elif ev.type == X.MotionNotify:
                record(f"Motion {ev.event_x} {ev.event_y}")
            elif ev.type in (X.FocusIn, X.FocusOut):
                record("FocusIn" if ev.type == X.FocusIn else "FocusOut")
        r, _, _ = select.select([dpy.fileno(), sys.stdin], [], [], 1.0)
        if sys.stdin in r and not os.read(sys.stdin.fileno(), 4096):
            return  # stdin closed: the test is done with us


if __name__ == "__main__":
    main()
