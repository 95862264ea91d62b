"""ipsec-lab: IPsec field problems rebuilt as runnable labs on Mininet + strongSwan."""
