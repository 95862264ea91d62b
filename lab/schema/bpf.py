"""Capture filters compiled by libpcap, the compiler tcpdump itself uses, without capturing.

`lab validate` refuses a filter tcpdump would refuse, instead of the run finding out after
a whole phase. Needs no privileges (pcap_open_dead); without libpcap there is nothing to
compare with, and the preflight of a run reports tcpdump missing anyway.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

DLT_EN10MB = 1  # lab captures are on Ethernet (veth) interfaces
SNAPLEN = 65535
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


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
    return lib


def compile_error(expression: str) -> str | None:
    """libpcap's complaint about `expression`, or None when it compiles (or cannot be checked here)."""
    lib = _libpcap()
    if lib is None:
        return None
    handle = lib.pcap_open_dead(DLT_EN10MB, SNAPLEN)
    program = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            return lib.pcap_geterr(handle).decode(errors="replace")
        lib.pcap_freecode(ctypes.byref(program))
        return None
    finally:
        lib.pcap_close(handle)
