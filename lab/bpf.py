"""Capture filters compiled and run by libpcap, the compiler tcpdump itself uses, through ctypes.

`compile_error` lets `lab validate` refuse a filter tcpdump would refuse, without capturing
(pcap_open_dead needs no privileges). `Filter` applies one to frames read from a file with
pcap_offline_filter, so a filtered read is the selection tcpdump would make, without running
tcpdump.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

DLT_EN10MB = 1  # lab captures are on Ethernet (veth) interfaces
SNAPLEN = 65535
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
# Files carry LINKTYPE_ values, pcap_open_dead wants the platform's DLT_ value; they differ for raw
# IP only (LINKTYPE_RAW 101, and 14, which is DLT_RAW on OpenBSD, are DLT_RAW 12 here).
DLT_FOR_LINKTYPE = {101: 12, 14: 12}


class BpfError(ValueError):
    """libpcap refused the filter, or is not installed."""


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


@cache
def _libpcap() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("pcap")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_BpfProgram), ctypes.POINTER(_PktHdr), ctypes.c_char_p]
    lib.pcap_offline_filter.restype = ctypes.c_int
    return lib


def _compile(lib: ctypes.CDLL, expression: str, linktype: int) -> tuple[_BpfProgram | None, str | None]:
    """The compiled program, or libpcap's complaint."""
    handle = lib.pcap_open_dead(DLT_FOR_LINKTYPE.get(linktype, linktype), SNAPLEN)
    if not handle:
        return None, f"libpcap cannot open a handle for link type {linktype}"
    program = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            return None, lib.pcap_geterr(handle).decode(errors="replace")
        return program, None
    finally:
        lib.pcap_close(handle)  # the program outlives its handle: it holds its own instructions


def compile_error(expression: str, linktype: int = DLT_EN10MB) -> str | None:
    """libpcap's complaint about `expression` on frames of `linktype` (a capture file's link type),
    or None when it compiles (or cannot be checked here)."""
    lib = _libpcap()
    if lib is None:
        return None
    program, error = _compile(lib, expression, linktype)
    if program is not None:
        lib.pcap_freecode(ctypes.byref(program))
    return error


class Filter:
    """One filter expression, compiled once per link type it meets (a pcapng file may mix them)."""

    def __init__(self, expression: str):
        lib = _libpcap()
        if lib is None:
            raise BpfError(f"cannot apply the filter '{expression}': libpcap is not installed")
        self._lib = lib
        self.expression = expression
        self._programs: dict[int, _BpfProgram] = {}
        self._header = _PktHdr()

    def matches(self, linktype: int, frame: bytes, wirelen: int) -> bool:
        """Whether the frame (as captured, `wirelen` bytes on the wire) passes the filter."""
        program = self._programs.get(linktype)
        if program is None:
            program, error = _compile(self._lib, self.expression, linktype)
            if program is None:
                raise BpfError(f"filter '{self.expression}' on link type {linktype}: {error}")
            self._programs[linktype] = program
        self._header.caplen = len(frame)
        self._header.len = max(wirelen, len(frame))
        return self._lib.pcap_offline_filter(ctypes.byref(program), ctypes.byref(self._header), frame) != 0

    def close(self) -> None:
        for program in self._programs.values():
            self._lib.pcap_freecode(ctypes.byref(program))
        self._programs.clear()

    def __enter__(self) -> "Filter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
