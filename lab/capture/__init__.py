"""Captures: tcpdump on node interfaces (tcpdump), and pcaps decoded into records (packets)."""

SNAPLEN = 65535 + 14  # the largest IPv4 packet and its Ethernet header
