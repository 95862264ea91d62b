"""Running scenarios, from the top down (each module imports only those below it):

scenarios  a scenario's phases, prepared (results folder, PKI) and finished (result.json, report)
scheduler  phases side by side, each in a sandboxed worker process, `jobs` at a time
worker     a process forked for one phase (or one call), entered into a sandbox of its own
phase      one phase on one lab: steps, checks, the verdict, lab diagnose
lab        one running lab: network, charon daemons, captures, relays, monitors; teardown
"""
