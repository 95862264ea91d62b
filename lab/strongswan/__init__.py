"""strongSwan nodes: configuration rendering and the charon daemon."""
