"""A workaround for a Qt bug seen under X: a new OpenCV window that stays black.

The Qt that OpenCV's wheels bundle (5.15, xcb) at times misses the first events of a new
window, its MapNotify among them, and then takes the window for unmapped: it never paints it,
while the X server shows it mapped. Measured under Xvfb with the window tests' logs
(`QT_LOGGING_RULES=qt.qpa.events=true`): about one window in 15 stayed black for good, its
log without the MAP_NOTIFY every other run had; unmapping and mapping the window again (a new
MapNotify) made Qt paint it at once. `remap_own_windows` does that once, after the window has
shown its first image: through libX11 (ctypes), to this process's top-level windows of that
title only (their `_NET_WM_PID`). Where there is no X (Wayland without XWayland, no libX11,
another OpenCV GUI backend) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_XA_CARDINAL = 6


def _libx11():
    name = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    ulong, ptr = ctypes.c_ulong, ctypes.c_void_p
    lib.XOpenDisplay.restype = ptr
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ulong
    lib.XDefaultRootWindow.argtypes = [ptr]
    lib.XQueryTree.argtypes = [ptr, ulong, ctypes.POINTER(ulong), ctypes.POINTER(ulong),
                               ctypes.POINTER(ctypes.POINTER(ulong)),
                               ctypes.POINTER(ctypes.c_uint)]  # fmt: skip
    lib.XFetchName.argtypes = [ptr, ulong, ctypes.POINTER(ctypes.c_char_p)]
    lib.XInternAtom.restype = ulong
    lib.XInternAtom.argtypes = [ptr, ctypes.c_char_p, ctypes.c_int]
    lib.XGetWindowProperty.argtypes = [
        ptr, ulong, ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int, ulong,
        ctypes.POINTER(ulong), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ulong),
        ctypes.POINTER(ulong), ctypes.POINTER(ctypes.c_void_p),
    ]  # fmt: skip
    for name in ("XUnmapWindow", "XMapWindow"):
        getattr(lib, name).argtypes = [ptr, ulong]
    lib.XFlush.argtypes = [ptr]
    lib.XFree.argtypes = [ctypes.c_void_p]
    lib.XCloseDisplay.argtypes = [ptr]
    return lib


def _pid_of(lib, display, window, atom) -> int | None:
    kind, fmt = ctypes.c_ulong(), ctypes.c_int()
    count, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
    status = lib.XGetWindowProperty(
        display, window, atom, 0, 1, 0, _XA_CARDINAL, ctypes.byref(kind), ctypes.byref(fmt),
        ctypes.byref(count), ctypes.byref(after), ctypes.byref(data),
    )  # fmt: skip
    if status != 0 or not data.value:
        return None
    try:
        if fmt.value != 32 or count.value < 1:
            return None
        return ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0]  # format 32: C longs
    finally:
        lib.XFree(data)


def remap_own_windows(title: str) -> int:
    """Unmap and map again this process's top-level X windows named `title`; how many."""
    if not os.environ.get("DISPLAY"):
        return 0
    lib = _libx11()
    if lib is None:
        return 0
    display = lib.XOpenDisplay(None)
    if not display:
        return 0
    done = 0
    try:
        root = lib.XDefaultRootWindow(display)
        parent, root_back = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not lib.XQueryTree(display, root, ctypes.byref(root_back), ctypes.byref(parent),
                              ctypes.byref(children), ctypes.byref(count)):  # fmt: skip
            return 0
        pid_atom = lib.XInternAtom(display, b"_NET_WM_PID", 1)
        try:
            for k in range(count.value):
                window = children[k]
                name = ctypes.c_char_p()
                if not lib.XFetchName(display, window, ctypes.byref(name)) or not name.value:
                    continue
                matches = name.value.decode("utf-8", "replace") == title
                lib.XFree(name)
                if matches and pid_atom and _pid_of(lib, display, window, pid_atom) == os.getpid():
                    lib.XUnmapWindow(display, window)
                    lib.XMapWindow(display, window)
                    done += 1
        finally:
            if children:
                lib.XFree(children)
        lib.XFlush(display)
    finally:
        lib.XCloseDisplay(display)
    return done
