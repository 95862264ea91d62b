"""Captures: tcpdump on node interfaces (tcpdump), and pcaps decoded into records (packets)."""
