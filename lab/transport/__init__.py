"""IKE and ESP over TCP (RFC 9329) for strongSwan, which has none: framing and a relay."""
